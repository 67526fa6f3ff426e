package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

class CpuMathTest {
  private static float[] random(SplittableRandom rnd, int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (rnd.nextDouble() * 2 - 1);
    }
    return v;
  }

  /**
   * Rows computed together (in fours, then one by one) equal each row computed alone, bit for bit,
   * and a float64 product to float32 rounding: a token's result never depends on its batch.
   */
  @Test
  void matmulRowsAreTheSameAloneAndInAnyBatch() {
    SplittableRandom rnd = new SplittableRandom(11);
    int in = 96;
    int out = 300;
    float[] w = random(rnd, out * in);
    float[] bias = random(rnd, out);
    PackedMatrix packed = PackedMatrix.pack(w, out, in, 128);
    CpuMath math = new CpuMath(new ForkJoinPool(2));
    for (int rows : new int[] {1, 3, 4, 7, 16, 21}) {
      float[] x = random(rnd, rows * in);
      float[] together = new float[rows * out];
      math.matmul(together, x, rows, packed, bias);
      for (int n = 0; n < rows; n++) {
        float[] alone = new float[out];
        math.matmul(alone, Arrays.copyOfRange(x, n * in, (n + 1) * in), 1, packed, bias);
        assertArrayEquals(
            alone, Arrays.copyOfRange(together, n * out, (n + 1) * out), rows + " rows, row " + n);
        for (int o = 0; o < out; o++) {
          double exact = bias[o];
          for (int i = 0; i < in; i++) {
            exact += (double) x[n * in + i] * w[o * in + i];
          }
          assertEquals(exact, alone[o], 1e-4, "row " + n + " output " + o);
        }
      }
    }
  }
}
