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
   * tile's weights stream by once. A pass over the tile adds four inputs at once into two tokens'
   * accumulators (one for an odd last token), so each accumulator is loaded and stored once per
   * four products: the stores, not the arithmetic, bound the one-input pass. Each output still sums
   * over i in order, one product at a time, so a token's result does not depend on what else is in
   * the batch. {@code bias} may be null.
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
          int i = 0;
          for (; i + 3 < in; i += 4) {
            float[] w0 = w.rows[base + i];
            float[] w1 = w.rows[base + i + 1];
            float[] w2 = w.rows[base + i + 2];
            float[] w3 = w.rows[base + i + 3];
            int n = 0;
            for (; n + 1 < count; n += 2) {
              int at = (firstRow + n) * in + i;
              axpy4x2(acc[n], acc[n + 1], x, at, at + in, w0, w1, w2, w3);
            }
            if (n < count) {
              axpy4(acc[n], x, (firstRow + n) * in + i, w0, w1, w2, w3);
            }
          }
          for (; i < in; i++) {
            float[] weights = w.rows[base + i];
            for (int n = 0; n < count; n++) {
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
   * {@code acc += x[at + k] * w[k]} for k in 0..3, in one pass; the products are added one after
   * another as four {@link #axpy} passes would add them, so the result is bit for bit the same.
   */
  private static void axpy4(
      float[] acc, float[] x, int at, float[] w0, float[] w1, float[] w2, float[] w3) {
    float a0 = x[at];
    float a1 = x[at + 1];
    float a2 = x[at + 2];
    float a3 = x[at + 3];
    for (int j = 0; j < w0.length; j++) {
      acc[j] = acc[j] + a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j];
    }
  }

  /** {@link #axpy4} for two tokens (inputs at {@code aAt} and {@code bAt}) in one weight pass. */
  private static void axpy4x2(
      float[] accA,
      float[] accB,
      float[] x,
      int aAt,
      int bAt,
      float[] w0,
      float[] w1,
      float[] w2,
      float[] w3) {
    float a0 = x[aAt];
    float a1 = x[aAt + 1];
    float a2 = x[aAt + 2];
    float a3 = x[aAt + 3];
    float b0 = x[bAt];
    float b1 = x[bAt + 1];
    float b2 = x[bAt + 2];
    float b3 = x[bAt + 3];
    for (int j = 0; j < w0.length; j++) {
      float p = w0[j];
      float q = w1[j];
      float r = w2[j];
      float s = w3[j];
      accA[j] = accA[j] + a0 * p + a1 * q + a2 * r + a3 * s;
      accB[j] = accB[j] + b0 * p + b1 * q + b2 * r + b3 * s;
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
