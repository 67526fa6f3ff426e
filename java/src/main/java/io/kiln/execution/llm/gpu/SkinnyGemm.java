package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The skinny GEMM kernels ({@code skinny_gemm*} in llm_kernels.cu): {@code y[m][out] = x[m][in] .
 * w[out][in]^T} for steps of at most {@link #MAX_TOKENS} rows, one warp per output row. The runner
 * uses them for one-row steps; the builds for more rows are kept for the dense-segment bench and
 * the kernel tests. The geometry and checks are plain Java so that they can be tested without a
 * device.
 */
final class SkinnyGemm {
  /** Most activation rows the kernel handles (its register tile). */
  static final int MAX_TOKENS = 8;

  /** Most warps per block, the kernel's launch bound. */
  static final int MAX_WARPS_PER_BLOCK = 4;

  /** Blocks per multiprocessor below which a launch uses smaller blocks to reach more of them. */
  static final int MIN_BLOCKS_PER_SM = 2;

  private SkinnyGemm() {}

  /**
   * One skinny GEMM entry point in its two builds: {@code rows} for 1 to {@link #MAX_TOKENS}
   * activation rows, {@code oneRow} ({@code _m1}) for exactly one, whose smaller register tile lets
   * twice the blocks share a multiprocessor (batch-1 decode, the hot path).
   */
  record Variants(Kernel rows, Kernel oneRow) {
    static Variants of(CudaModule m, String name, String storageSuffix, String signature) {
      return new Variants(
          m.kernel(name + "_" + storageSuffix, signature),
          m.kernel(name + "_m1_" + storageSuffix, signature));
    }

    Kernel forRows(int m) {
      return m == 1 ? oneRow : rows;
    }
  }

  static boolean handles(int tokens) {
    return tokens >= 1 && tokens <= MAX_TOKENS;
  }

  /**
   * Warps per block for {@code out} rows: the largest block that still gives every multiprocessor
   * {@link #MIN_BLOCKS_PER_SM} blocks, so that narrow layers spread over the whole device.
   */
  static int warpsPerBlock(int out, int multiprocessors) {
    for (int warps = MAX_WARPS_PER_BLOCK; warps > 1; warps /= 2) {
      if (blocks(out, warps) >= (long) MIN_BLOCKS_PER_SM * multiprocessors) {
        return warps;
      }
    }
    return 1;
  }

  static long blocks(int out, int warpsPerBlock) {
    return ((long) out + warpsPerBlock - 1) / warpsPerBlock;
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
   * Enqueues {@code kernel} (a plain, bias or fp32-output skinny GEMM) with its pointers first (y,
   * x, w and, for the bias kernel, the bias), then m, in and out.
   */
  static void launch(
      Variants kernel,
      CUstream_st stream,
      int multiprocessors,
      int m,
      int in,
      int out,
      long... pointers) {
    checkShape(m, in, out);
    int warps = warpsPerBlock(out, multiprocessors);
    Object[] args = new Object[pointers.length + 3];
    for (int i = 0; i < pointers.length; i++) {
      args[i] = pointers[i];
    }
    args[pointers.length] = m;
    args[pointers.length + 1] = in;
    args[pointers.length + 2] = out;
    kernel.forRows(m).launch(stream, blocks(out, warps), 1, 1, 32 * warps, 0, args);
  }

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
      long positions,
      long cosTable,
      long sinTable,
      long keyCache,
      long valueCache,
      long slotMapping,
      int numHeads,
      int numKvHeads,
      int headDim) {
    checkShape(m, in, out);
    if (headDim < 2 || headDim % 2 != 0 || (long) (numHeads + 2 * numKvHeads) * headDim != out) {
      throw new BackendException(
          "skinny gemm rope: a row of "
              + out
              + " is not "
              + numHeads
              + " + 2 x "
              + numKvHeads
              + " heads of an even size "
              + headDim);
    }
    int pairs = out / 2;
    int warps = warpsPerBlock(pairs, multiprocessors);
    kernel
        .forRows(m)
        .launch(
            stream,
            blocks(pairs, warps),
            1,
            1,
            32 * warps,
            0,
            y,
            x,
            w,
            m,
            in,
            out,
            positions,
            cosTable,
            sinTable,
            keyCache,
            valueCache,
            slotMapping,
            numHeads,
            numKvHeads,
            headDim);
  }
}
