package io.kiln.execution.llm;

import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Float32 kernels of the CPU decoder, parallel over output rows. */
final class CpuMath {
  private final ForkJoinPool pool;

  CpuMath(ForkJoinPool pool) {
    this.pool = pool;
  }

  void parallelFor(int n, IntConsumer body) {
    if (n == 1 || pool.getParallelism() == 1) {
      for (int i = 0; i < n; i++) {
        body.accept(i);
      }
    } else {
      pool.submit(() -> IntStream.range(0, n).parallel().forEach(body)).join();
    }
  }

  /** Outputs per task: their accumulators stay in L1 while the weights stream. */
  static final int TILE = 64;

  /** Tokens per task: each weight row slice is reused this many times once loaded. */
  private static final int ROW_TILE = 16;

  /**
   * {@code out[n][o] = sum_i x[n][i] * w[o][i] + bias[o]} for {@code rows} inputs of {@code in}
   * values, with {@code w} packed by {@link #pack}: the inner loop is then a contiguous
   * multiply-add over a tile of outputs, which the JIT turns into SIMD, and each task streams one
   * contiguous slab of weights. Each output sums over i in order, so a token's result does not
   * depend on what else is in the batch. {@code bias} may be null.
   */
  void matmul(float[] out, float[] x, int rows, float[] packed, float[] bias, int in, int outDim) {
    int columnTiles = (outDim + TILE - 1) / TILE;
    int rowTiles = (rows + ROW_TILE - 1) / ROW_TILE;
    parallelFor(
        columnTiles * rowTiles,
        job -> {
          int tile = job % columnTiles;
          int from = tile * TILE;
          int width = Math.min(outDim, from + TILE) - from;
          int firstRow = (job / columnTiles) * ROW_TILE;
          int lastRow = Math.min(rows, firstRow + ROW_TILE);
          float[] acc = new float[(lastRow - firstRow) * TILE];
          int slab = tile * in * TILE;
          for (int i = 0; i < in; i++) {
            int wAt = slab + i * TILE;
            for (int n = firstRow; n < lastRow; n++) {
              float xi = x[n * in + i];
              int at = (n - firstRow) * TILE;
              for (int j = 0; j < TILE; j++) {
                acc[at + j] += xi * packed[wAt + j];
              }
            }
          }
          for (int n = firstRow; n < lastRow; n++) {
            int at = (n - firstRow) * TILE;
            for (int j = 0; j < width; j++) {
              out[n * outDim + from + j] = acc[at + j] + (bias == null ? 0f : bias[from + j]);
            }
          }
        });
  }

  /**
   * Packs {@code [out][in]} weights as tiles of {@link #TILE} outputs, each tile {@code [in][TILE]}
   * and contiguous; the last tile is padded with zeros.
   */
  static float[] pack(float[] w, int outDim, int in) {
    int tiles = (outDim + TILE - 1) / TILE;
    float[] packed = new float[Math.multiplyExact(tiles * TILE, in)];
    for (int o = 0; o < outDim; o++) {
      int tile = o / TILE;
      int j = o % TILE;
      int slab = tile * in * TILE;
      for (int i = 0; i < in; i++) {
        packed[slab + i * TILE + j] = w[o * in + i];
      }
    }
    return packed;
  }

  /** Four partial sums so the JIT can overlap the multiply-adds. */
  static float dot(float[] a, int aAt, float[] b, int bAt, int n) {
    float s0 = 0;
    float s1 = 0;
    float s2 = 0;
    float s3 = 0;
    int i = 0;
    for (; i + 3 < n; i += 4) {
      s0 += a[aAt + i] * b[bAt + i];
      s1 += a[aAt + i + 1] * b[bAt + i + 1];
      s2 += a[aAt + i + 2] * b[bAt + i + 2];
      s3 += a[aAt + i + 3] * b[bAt + i + 3];
    }
    for (; i < n; i++) {
      s0 += a[aAt + i] * b[bAt + i];
    }
    return (s0 + s1) + (s2 + s3);
  }

  /** RMSNorm of each of {@code rows} vectors: {@code x / sqrt(mean(x^2) + eps) * weight}. */
  static void rmsnorm(float[] out, float[] x, int rows, float[] weight, int dim, double eps) {
    for (int n = 0; n < rows; n++) {
      int at = n * dim;
      double ss = 0;
      for (int i = 0; i < dim; i++) {
        ss += (double) x[at + i] * x[at + i];
      }
      float scale = (float) (1.0 / Math.sqrt(ss / dim + eps));
      for (int i = 0; i < dim; i++) {
        out[at + i] = weight[i] * (x[at + i] * scale);
      }
    }
  }

  /** In place: {@code values[i] = exp(values[i] - max) / sum} over the first {@code n}. */
  static void softmax(float[] values, int n) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, values[i]);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
      float e = (float) Math.exp(values[i] - max);
      values[i] = e;
      sum += e;
    }
    float inv = (float) (1.0 / sum);
    for (int i = 0; i < n; i++) {
      values[i] *= inv;
    }
  }

  static float silu(float x) {
    return (float) (x / (1.0 + Math.exp(-x)));
  }
}
