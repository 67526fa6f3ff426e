package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The skinny GEMM kernels ({@code skinny_gemm*} in llm_kernels.cu): {@code y[m][out] = x[m][in] .
 * w[out][in]^T} for steps of at most {@link #MAX_TOKENS} rows, one warp per output row (two or four
 * for long rows, see {@link #warpsPerRow}). With fp16 weights, steps of 2 to 8 rows run on tensor
 * cores instead ({@code skinny_gemm*_mma_f16}, see {@link TensorCoreGeometry}); the FMA builds for
 * more rows stay for fp32 storage, the dense-segment bench and the kernel tests. The geometry and
 * checks are plain Java so that they can be tested without a device.
 */
public final class SkinnyGemm {
  /** Most activation rows the kernel handles (its register tile). */
  static final int MAX_TOKENS = 8;

  /** Most warps per block, the kernel's launch bound. */
  static final int MAX_WARPS_PER_BLOCK = 4;

  /** Codes per 16-byte load of the int8 LM head: its rows must be a multiple long. */
  static final int INT8_VECTOR = 16;

  /** Blocks per multiprocessor below which a launch uses smaller blocks to reach more of them. */
  static final int MIN_BLOCKS_PER_SM = 2;

  private SkinnyGemm() {}

  /**
   * One skinny GEMM entry point in its builds: {@code rows} for 1 to {@link #MAX_TOKENS} activation
   * rows, {@code oneRow} ({@code _m1}) for exactly one, whose smaller register tile lets twice the
   * blocks share a multiprocessor (batch-1 decode, the hot path), and {@code tensorCores} ({@code
   * _mma}, fp16 only, else null) for 2 to {@link #MAX_TOKENS}. {@code warpRowsPerTile}: the warp
   * rows (output rows, or the pairs of the SiLU gate and RoPE) of one tensor-core block.
   */
  record Variants(
      Kernel rows, Kernel oneRow, Kernel tensorCores, int elementBytes, int warpRowsPerTile) {
    /**
     * The int8 LM head ({@code skinny_gemm_logits_i8}): fp16 activations, one-byte weights, no
     * tensor-core build.
     */
    static Variants int8Logits(CudaModule m) {
      String signature = "ppppiiiip";
      return new Variants(
          m.kernel("skinny_gemm_logits_i8_f16", signature),
          m.kernel("skinny_gemm_logits_i8_m1_f16", signature),
          null,
          1,
          0);
    }

    static Variants of(CudaModule m, String name, StorageType storage, String signature) {
      return new Variants(
          m.kernel(name + "_" + storage.suffix, signature),
          m.kernel(name + "_m1_" + storage.suffix, signature),
          null,
          storage.bytes,
          0);
    }

    /** With the tensor-core build where the storage is fp16. */
    static Variants withTensorCores(
        CudaModule m, String name, StorageType storage, String signature, boolean paired) {
      Variants plain = of(m, name, storage, signature);
      return storage != StorageType.F16
          ? plain
          : new Variants(
              plain.rows,
              plain.oneRow,
              m.kernel(name + "_mma_" + storage.suffix, signature),
              storage.bytes,
              paired ? TensorCoreGeometry.TILE_PAIRS : TensorCoreGeometry.TILE_ROWS);
    }

    Kernel forRows(int m) {
      return m == 1 ? oneRow : rows;
    }

    /** Every build, for settings that apply to all of them. */
    java.util.List<Kernel> all() {
      return tensorCores == null
          ? java.util.List.of(rows, oneRow)
          : java.util.List.of(rows, oneRow, tensorCores);
    }
  }

  /**
   * How the tensor-core build is laid out: a block per tile of 16 weight rows (8 pairs), its warps
   * splitting the row length, 8 of them where tiles are too few to give every multiprocessor 4
   * blocks, else 4. It needs 16-byte aligned rows: {@code in} a multiple of 8 and aligned x and w.
   */
  record TensorCoreGeometry(long blocks, int warpsPerBlock) {
    static final int TILE_ROWS = 16;
    static final int TILE_PAIRS = 8;
    static final int MAX_WARPS = 8;

    static TensorCoreGeometry of(int warpRows, int warpRowsPerTile, int multiprocessors) {
      long tiles = ((long) warpRows + warpRowsPerTile - 1) / warpRowsPerTile;
      int warps = tiles < 4L * multiprocessors ? MAX_WARPS : MAX_WARPS / 2;
      return new TensorCoreGeometry(tiles, warps);
    }

    static boolean fits(int in, long x, long w) {
      return in % 8 == 0 && x % 16 == 0 && w % 16 == 0;
    }
  }

  public static boolean handles(int tokens) {
    return tokens >= 1 && tokens <= MAX_TOKENS;
  }

  /**
   * Warps per block for {@code out} rows: the largest block that still gives every multiprocessor
   * {@link #MIN_BLOCKS_PER_SM} blocks, so that narrow layers spread over the whole device.
   */
  static int warpsPerBlock(int out, int multiprocessors) {
    for (int warps = MAX_WARPS_PER_BLOCK; warps > 1; warps /= 2) {
      if (((long) out + warps - 1) / warps >= (long) MIN_BLOCKS_PER_SM * multiprocessors) {
        return warps;
      }
    }
    return 1;
  }

  /**
   * Row bytes from which a row is split over 2 warps, twice that over 4 (a lane round is 4 KiB).
   */
  static final int SPLIT_ROW_BYTES = 8192;

  /**
   * Warps that share one weight row of {@code in} elements: 1, 2 or 4. A warp walks its part of a
   * row one round of loads after another, so long rows (the MLP's down projection) are split to
   * keep their loads in flight together.
   */
  static int warpsPerRow(int in, int elementBytes) {
    long bytes = (long) in * elementBytes;
    return bytes >= 2L * SPLIT_ROW_BYTES ? 4 : bytes >= SPLIT_ROW_BYTES ? 2 : 1;
  }

  /**
   * How a launch over {@code rows} warp rows (output rows, or rotation pairs) of {@code in} inputs
   * is laid out: warps per row, warps per block (a multiple of it), blocks.
   */
  record Geometry(int warpsPerRow, int warpsPerBlock, long blocks) {
    static Geometry of(int rows, int in, int elementBytes, int multiprocessors) {
      int split = SkinnyGemm.warpsPerRow(in, elementBytes);
      long warps = (long) rows * split;
      int perBlock =
          Math.max(
              split,
              SkinnyGemm.warpsPerBlock((int) Math.min(Integer.MAX_VALUE, warps), multiprocessors));
      return new Geometry(split, perBlock, (warps + perBlock - 1) / perBlock);
    }
  }

  static void checkShape(int m, int in, int out) {
    if (!handles(m) || in < 1 || out < 1) {
      throw new BackendException(
          "skinny gemm with shape "
              + m
              + "x"
              + in
              + "x"
              + out
              + ": needs 1 to "
              + MAX_TOKENS
              + " rows and positive sizes");
    }
  }

  /**
   * Enqueues {@code kernel}, a skinny GEMM with the parameters {@code (y, x, w, m, in, out,
   * ksplit)}: the plain, fp32-output, SiLU-gate or residual product.
   */
  static void launch(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w) {
    checkShape(m, in, out);
    enqueue(kernel, stream, multiprocessors, m, in, out, out, new long[] {y, x, w});
  }

  /**
   * Enqueues the product with a bias ({@code skinny_gemm_bias}: {@code y, x, w, bias, m, in, out,
   * ksplit}).
   */
  static void launchBias(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      long bias) {
    checkShape(m, in, out);
    enqueue(kernel, stream, multiprocessors, m, in, out, out, new long[] {y, x, w, bias});
  }

  /**
   * Enqueues a normed product ({@code skinny_gemm_silu_normed}): {@code x} is the fp32 residual
   * stream, whose RMSNorm the kernel computes with {@code eps}; the norm's weight is folded into
   * {@code w}.
   */
  static void launchNormed(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      float eps) {
    checkShape(m, in, out);
    checkResidualStream(x);
    enqueue(kernel, stream, multiprocessors, m, in, out, out, new long[] {y, x, w}, eps);
  }

  /**
   * Enqueues the LM head with the greedy argmax fused ({@code skinny_gemm_logits}): fp32 logits
   * into {@code y}, and for each activation row t a 64-bit key at {@code keys} + 8t (zero before
   * the launch) that {@link StepLayout#greedyToken} turns into the token.
   */
  static void launchLogits(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      long keys) {
    checkShape(m, in, out);
    checkKeys(keys);
    enqueue(kernel, stream, multiprocessors, m, in, out, out, new long[] {y, x, w}, keys);
  }

  /**
   * Enqueues the int8 LM head with the greedy argmax fused ({@code skinny_gemm_logits_i8}): as
   * {@link #launchLogits}, the weights int8 {@code codes} with a fp32 scale per row at {@code
   * scales}; {@code in} a multiple of {@link #INT8_VECTOR}, x and the codes 16-byte aligned.
   */
  static void launchLogitsInt8(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long codes,
      long scales,
      long keys) {
    checkShape(m, in, out);
    if (in % INT8_VECTOR != 0 || x % 16 != 0 || codes % 16 != 0) {
      throw new BackendException(
          "skinny gemm int8 logits: rows of "
              + in
              + " codes (a multiple of "
              + INT8_VECTOR
              + " needed) at 0x"
              + Long.toHexString(codes)
              + ", activations at 0x"
              + Long.toHexString(x)
              + " (both 16-byte aligned)");
    }
    checkKeys(keys);
    enqueue(
        kernel, stream, multiprocessors, m, in, out, out, new long[] {y, x, codes, scales}, keys);
  }

  private static void checkKeys(long keys) {
    if (keys % 8 != 0) {
      throw new BackendException(
          "skinny gemm logits: greedy keys at 0x"
              + Long.toHexString(keys)
              + " are not 8-byte aligned");
    }
  }

  /** The normed kernels read the fp32 residual stream in 16-byte vectors. */
  private static void checkResidualStream(long x) {
    if (x % 16 != 0) {
      throw new BackendException(
          "skinny gemm normed: the fp32 residual stream at 0x"
              + Long.toHexString(x)
              + " is not 16-byte aligned");
    }
  }

  /**
   * Lays {@code warpRows} warp rows out ({@link Geometry}) and launches with {@code pointers}, then
   * m, in, out and the warps per row, then {@code rest}.
   */
  private static void enqueue(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      int warpRows,
      long[] pointers,
      Object... rest) {
    boolean tensorCores =
        m > 1
            && kernel.tensorCores() != null
            && TensorCoreGeometry.fits(in, pointers[1], pointers[2]);
    long blocks;
    int warpsPerBlock;
    int split;
    if (tensorCores) {
      TensorCoreGeometry g =
          TensorCoreGeometry.of(warpRows, kernel.warpRowsPerTile(), multiprocessors);
      blocks = g.blocks();
      warpsPerBlock = g.warpsPerBlock();
      split = warpsPerBlock;
    } else {
      Geometry g = Geometry.of(warpRows, in, kernel.elementBytes(), multiprocessors);
      blocks = g.blocks();
      warpsPerBlock = g.warpsPerBlock();
      split = g.warpsPerRow();
    }
    Object[] args = new Object[pointers.length + 4 + rest.length];
    for (int i = 0; i < pointers.length; i++) {
      args[i] = pointers[i];
    }
    args[pointers.length] = m;
    args[pointers.length + 1] = in;
    args[pointers.length + 2] = out;
    args[pointers.length + 3] = split;
    System.arraycopy(rest, 0, args, pointers.length + 4, rest.length);
    Kernel build = tensorCores ? kernel.tensorCores() : kernel.forRows(m);
    build.launch(stream, blocks, 1, 1, 32 * warpsPerBlock, 0, args);
  }

  /**
   * Where the fused QKV kernels rotate and write to (RopeKv in llm_kernels.cu): the positions and
   * the cos/sin tables of RoPE, the K/V pools of the layer and the slot mapping, with the head
   * counts and size.
   */
  public record RopeKv(
      long positions,
      long cosTable,
      long sinTable,
      long keyCache,
      long valueCache,
      long slotMapping,
      int numHeads,
      int numKvHeads,
      int headDim) {}

  /**
   * Enqueues the QKV projection with RoPE and the K/V pool write fused ({@code
   * skinny_gemm_rope_kv}): {@code out} is the QKV row width, {@code (numHeads + 2 numKvHeads)
   * headDim}; one warp per rotation pair, so {@code out / 2} warps.
   */
  static void launchRopeKv(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      RopeKv rope) {
    ropeKv(kernel, stream, multiprocessors, m, in, out, y, x, w, rope);
  }

  /**
   * {@link #launchRopeKv} with the norm fused ({@code skinny_gemm_rope_kv_normed}): {@code x} is
   * the fp32 residual stream, as in {@link #launchNormed}.
   */
  static void launchRopeKvNormed(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      RopeKv rope,
      float eps) {
    checkResidualStream(x);
    ropeKv(kernel, stream, multiprocessors, m, in, out, y, x, w, rope, eps);
  }

  /** Checks the head layout and enqueues with the RoPE/K-V arguments, then {@code rest}. */
  private static void ropeKv(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long y,
      long x,
      long w,
      RopeKv r,
      Object... rest) {
    checkShape(m, in, out);
    int hd = r.headDim();
    if (hd < 2 || hd % 2 != 0 || (long) (r.numHeads() + 2 * r.numKvHeads()) * hd != out) {
      throw new BackendException(
          "skinny gemm rope: a row of "
              + out
              + " is not "
              + r.numHeads()
              + " + 2 x "
              + r.numKvHeads()
              + " heads of an even size "
              + hd);
    }
    Object[] tail = {
      r.positions(),
      r.cosTable(),
      r.sinTable(),
      r.keyCache(),
      r.valueCache(),
      r.slotMapping(),
      r.numHeads(),
      r.numKvHeads(),
      hd
    };
    Object[] args = java.util.Arrays.copyOf(tail, tail.length + rest.length);
    System.arraycopy(rest, 0, args, tail.length, rest.length);
    enqueue(kernel, stream, multiprocessors, m, in, out, out / 2, new long[] {y, x, w}, args);
  }
}
