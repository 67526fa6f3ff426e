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
   * Rows computed together (in pairs, an odd one alone, inputs four at a time then one by one)
   * equal each row computed alone and a float32 sum over the inputs in order, bit for bit, and a
   * float64 product to float32 rounding: a token's result never depends on its batch.
   */
  @Test
  void matmulRowsAreTheSameAloneAndInAnyBatch() {
    SplittableRandom rnd = new SplittableRandom(11);
    for (int in : new int[] {96, 99}) {
      int out = 300;
      float[] w = random(rnd, out * in);
      float[] bias = random(rnd, out);
      PackedMatrix packed = PackedMatrix.pack(w, out, in, in == 96 ? 128 : 512);
      CpuMath math = new CpuMath(new ForkJoinPool(2));
      for (int rows : new int[] {1, 2, 3, 4, 5, 7, 16, 21}) {
        float[] x = random(rnd, rows * in);
        float[] together = new float[rows * out];
        math.matmul(together, x, rows, packed, bias);
        for (int n = 0; n < rows; n++) {
          float[] alone = new float[out];
          math.matmul(alone, Arrays.copyOfRange(x, n * in, (n + 1) * in), 1, packed, bias);
          String where = in + " inputs, " + rows + " rows, row " + n;
          assertArrayEquals(alone, Arrays.copyOfRange(together, n * out, (n + 1) * out), where);
          for (int o = 0; o < out; o++) {
            float inOrder = 0;
            double exact = bias[o];
            for (int i = 0; i < in; i++) {
              inOrder += x[n * in + i] * w[o * in + i];
              exact += (double) x[n * in + i] * w[o * in + i];
            }
            assertEquals(inOrder + bias[o], alone[o], 0f, where + " output " + o);
            assertEquals(exact, alone[o], 1e-4, where + " output " + o);
          }
        }
      }
    }
  }

  /** Tiles as wide as still gives each thread two of them, within 128 to 512 columns. */
  @Test
  void tilesAreWideWhereThereAreEnoughForEveryThread() {
    assertEquals(512, PackedMatrix.tileWidthFor(2816, 2));
    assertEquals(256, PackedMatrix.tileWidthFor(1024, 2));
    assertEquals(128, PackedMatrix.tileWidthFor(256, 2));
    assertEquals(512, PackedMatrix.tileWidthFor(32000, 16));
    assertEquals(128, PackedMatrix.tileWidthFor(2816, 16));
    assertEquals(128, PackedMatrix.tileWidthFor(64, 1));
  }
}
