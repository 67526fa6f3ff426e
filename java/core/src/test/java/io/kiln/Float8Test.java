package io.kiln;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Float8Test {
  /** The E4M3 value of a code, from the format's definition, in double precision. */
  private static double reference(int code) {
    int sign = (code >> 7) & 1;
    int exponent = (code >> 3) & 15;
    int mantissa = code & 7;
    if (exponent == 15 && mantissa == 7) {
      return Double.NaN;
    }
    double v =
        exponent == 0
            ? mantissa / 8.0 * Math.pow(2, -6)
            : (1 + mantissa / 8.0) * Math.pow(2, exponent - 7);
    return sign == 1 ? -v : v;
  }

  @Test
  void everyCodeDecodesAsTheFormatSaysAndEncodesBack() {
    for (int code = 0; code < 256; code++) {
      double expected = reference(code);
      float decoded = Float8.e4m3ToFloat((byte) code);
      if (Double.isNaN(expected)) {
        assertTrue(Float.isNaN(decoded), "code " + code);
        continue;
      }
      assertEquals(expected, decoded, 0, "code " + code);
      assertEquals(code, Float8.floatToE4m3(decoded) & 0xff, "round trip of code " + code);
    }
    assertEquals(448f, Float8.e4m3ToFloat((byte) 0x7e));
  }

  @Test
  void roundsToTheNearestCodeTiesToEvenAndSaturates() {
    SplittableRandom random = new SplittableRandom(8);
    for (int i = 0; i < 200_000; i++) {
      float x = (float) ((random.nextDouble() * 2 - 1) * Math.pow(2, random.nextInt(-12, 10)));
      double got = Float8.e4m3ToFloat(Float8.floatToE4m3(x));
      double best = Double.NaN;
      for (int code = 0; code < 256; code++) {
        double v = reference(code);
        if (Double.isNaN(v) || Math.abs(x) > 448) {
          continue;
        }
        if (Double.isNaN(best)
            || Math.abs(v - x) < Math.abs(best - x)
            || (Math.abs(v - x) == Math.abs(best - x) && (code & 1) == 0)) {
          best = v;
        }
      }
      if (Math.abs(x) > 448) {
        best = Math.copySign(448, x);
      }
      assertEquals(Math.abs(best), Math.abs(got), 0, "x = " + x);
    }
    assertEquals(448f, Float8.e4m3ToFloat(Float8.floatToE4m3(1e6f)));
    assertEquals(-448f, Float8.e4m3ToFloat(Float8.floatToE4m3(Float.NEGATIVE_INFINITY)));
    assertTrue(Float.isNaN(Float8.e4m3ToFloat(Float8.floatToE4m3(Float.NaN))));
    // Between 8 and 16 the step is 1: halfway points go to the even mantissa.
    assertEquals(8f, Float8.e4m3ToFloat(Float8.floatToE4m3(8.5f)));
    assertEquals(10f, Float8.e4m3ToFloat(Float8.floatToE4m3(9.5f)));
  }
}
