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

  /** Tokens per task: each weight row slice is reused this many times once loaded. */
  private static final int ROW_TILE = 16;

  /**
   * {@code out[n][o] = sum_i x[n][i] * w[o][i] + bias[o]} for {@code rows} inputs. A task takes one
   * tile of outputs for up to {@link #ROW_TILE} tokens: their accumulators stay in L1 while the
   * tile's weights stream by once. Each output sums over i in order, so a token's result does not
   * depend on what else is in the batch. {@code bias} may be null.
   */
  void matmul(float[] out, float[] x, int rows, PackedMatrix w, float[] bias) {
    int in = w.in;
    int outDim = w.out;
    int rowTiles = (rows + ROW_TILE - 1) / ROW_TILE;
    parallelFor(
        w.tiles * rowTiles,
        job -> {
          int tile = job % w.tiles;
          int from = tile * w.tileWidth;
          int width = Math.min(outDim, from + w.tileWidth) - from;
          int firstRow = (job / w.tiles) * ROW_TILE;
          int count = Math.min(rows, firstRow + ROW_TILE) - firstRow;
          float[][] acc = new float[count][width];
          int base = tile * in;
          for (int i = 0; i < in; i++) {
            float[] weights = w.rows[base + i];
            int n = 0;
            // Four tokens per pass: each weight loaded once feeds four accumulators.
            for (; n + 3 < count; n += 4) {
              int at = (firstRow + n) * in + i;
              axpy4(acc, n, x[at], x[at + in], x[at + 2 * in], x[at + 3 * in], weights);
            }
            for (; n < count; n++) {
              axpy(acc[n], x[(firstRow + n) * in + i], weights);
            }
          }
          for (int n = 0; n < count; n++) {
            int at = (firstRow + n) * outDim + from;
            for (int j = 0; j < width; j++) {
              out[at + j] = acc[n][j] + (bias == null ? 0f : bias[from + j]);
            }
          }
        });
  }

  /** {@code acc += a * w}, both indexed from 0 so the JIT emits SIMD. */
  private static void axpy(float[] acc, float a, float[] w) {
    for (int j = 0; j < w.length; j++) {
      acc[j] += a * w[j];
    }
  }

  /**
   * {@code acc[n + k] += a_k * w} for k in 0..3, in one pass over {@code w}; each output adds the
   * same products in the same order as {@link #axpy} would, so results are bit for bit the same.
   */
  private static void axpy4(
      float[][] acc, int n, float a0, float a1, float a2, float a3, float[] w) {
    float[] c0 = acc[n];
    float[] c1 = acc[n + 1];
    float[] c2 = acc[n + 2];
    float[] c3 = acc[n + 3];
    for (int j = 0; j < w.length; j++) {
      float wj = w[j];
      c0[j] += a0 * wj;
      c1[j] += a1 * wj;
      c2[j] += a2 * wj;
      c3[j] += a3 * wj;
    }
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
