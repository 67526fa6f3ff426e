package io.kiln;

/**
 * Conversions between {@code float} and FP8 E4M3 ("e4m3fn": 1 sign, 4 exponent bits with bias 7, 3
 * mantissa bits, no infinities, one NaN pattern per sign), the format of FP8 weights.
 */
public final class Float8 {
  /** The largest finite E4M3 value. */
  public static final float MAX_E4M3 = 448f;

  /** The canonical NaN code. */
  static final int NAN = 0x7f;

  private Float8() {}

  /** The value of an E4M3 code. */
  public static float e4m3ToFloat(byte code) {
    int bits = code & 0xff;
    boolean negative = (bits & 0x80) != 0;
    int exponent = (bits >>> 3) & 0xf;
    int mantissa = bits & 0x7;
    if (exponent == 0xf && mantissa == 0x7) {
      return Float.NaN;
    }
    float value =
        exponent == 0
            ? mantissa * 0x1p-9f // subnormal: steps of 2^-9
            : Math.scalb(1f + mantissa / 8f, exponent - 7);
    return negative ? -value : value;
  }

  /**
   * Rounds to the nearest E4M3 value, ties to even. Values beyond the range saturate to ±448 (the
   * format has no infinity); NaN stays NaN.
   */
  public static byte floatToE4m3(float value) {
    if (Float.isNaN(value)) {
      return (byte) NAN;
    }
    int sign = (Float.floatToRawIntBits(value) >>> 24) & 0x80;
    double magnitude = Math.abs((double) value);
    int code;
    if (magnitude >= MAX_E4M3) {
      code = 0x7e;
    } else if (magnitude < 0x1p-6) {
      // Subnormal (or the smallest normal, when it rounds up to 8 steps).
      code = (int) Math.rint(magnitude * 0x1p9);
    } else {
      int exponent = Math.getExponent(magnitude);
      int mantissa = (int) Math.rint(Math.scalb(magnitude, -exponent) * 8 - 8);
      if (mantissa == 8) {
        exponent++;
        mantissa = 0;
      }
      code = exponent > 8 ? 0x7e : ((exponent + 7) << 3) | mantissa;
      if (code > 0x7e) {
        code = 0x7e;
      }
    }
    return (byte) (sign | code);
  }
}
