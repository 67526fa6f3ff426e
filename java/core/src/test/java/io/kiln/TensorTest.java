package io.kiln;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TensorTest {
  private final SplittableRandom random = new SplittableRandom(7);

  @Test
  void floatsRoundTripThroughNativeMemory() {
    float[] v = randomFloats(24);
    try (Tensor t = Tensor.of(v, 2, 3, 4)) {
      assertEquals(DType.F32, t.dtype());
      assertArrayEquals(new long[] {2, 3, 4}, t.shape());
      assertEquals(96, t.byteSize());
      assertArrayEquals(v, t.toFloatArray());
      try (Tensor c = t.copy()) {
        assertArrayEquals(v, c.toFloatArray());
      }
    }
  }

  @Test
  void integerTypesRoundTrip() {
    long[] longs = random.longs(10).toArray();
    try (Tensor t = Tensor.of(longs, 2, 5)) {
      assertArrayEquals(longs, t.toLongArray());
    }
    int[] ints = random.ints(6).toArray();
    try (Tensor t = Tensor.of(ints, 6)) {
      assertArrayEquals(ints, t.toIntArray());
    }
    byte[] bytes = {-128, -1, 0, 1, 127};
    try (Tensor t = Tensor.of(bytes, 5)) {
      assertArrayEquals(new long[] {-128, -1, 0, 1, 127}, t.toLongArray());
    }
    boolean[] bools = {true, false, true};
    try (Tensor t = Tensor.of(bools, 3)) {
      assertArrayEquals(bools, t.toBooleanArray());
    }
  }

  @Test
  void halfAndBfloat16KeepTheirPrecision() {
    float[] v = randomFloats(1000);
    try (Tensor h = Tensor.ofFloats(DType.F16, v, 1000);
        Tensor b = Tensor.ofFloats(DType.BF16, v, 1000)) {
      float[] hv = h.toFloatArray();
      float[] bv = b.toFloatArray();
      for (int i = 0; i < v.length; i++) {
        assertEquals(v[i], hv[i], Math.abs(v[i]) * 0x1p-11f + 1e-7f, "half at " + i);
        assertEquals(v[i], bv[i], Math.abs(v[i]) * 0x1p-8f + 1e-7f, "bfloat16 at " + i);
      }
    }
  }

  @Test
  void halfConversionHandlesEdgeValues() {
    assertEquals(65504f, Float16.halfToFloat(Float16.floatToHalf(65504f)));
    assertEquals(Float.POSITIVE_INFINITY, Float16.halfToFloat(Float16.floatToHalf(1e6f)));
    assertTrue(Float.isNaN(Float16.halfToFloat(Float16.floatToHalf(Float.NaN))));
    assertEquals(0x1p-24f, Float16.halfToFloat(Float16.floatToHalf(0x1p-24f)));
    assertEquals(-0.0f, Float16.halfToFloat(Float16.floatToHalf(-0.0f)));
    // Round to nearest even at the midpoint between 1 and the next half.
    assertEquals(1.0f, Float16.halfToFloat(Float16.floatToHalf(1.0f + 0x1p-11f)));
    for (int bits = 0; bits < 0x7c00; bits++) {
      short h = (short) bits;
      assertEquals(h, Float16.floatToHalf(Float16.halfToFloat(h)), "half bits " + bits);
    }
  }

  @Test
  void wrapIsAZeroCopyView() {
    ByteBuffer buffer = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    try (Tensor t = Tensor.wrap(buffer, DType.F32, 4)) {
      buffer.putFloat(8, 3.5f);
      assertEquals(3.5f, t.toFloatArray()[2]);
      t.buffer().putFloat(0, -2f);
      assertEquals(-2f, buffer.getFloat(0));
    }
  }

  @Test
  void badConstructionIsRejected() {
    assertThrows(InvalidInputException.class, () -> Tensor.of(new float[5], 2, 3));
    assertThrows(InvalidInputException.class, () -> Tensor.allocate(DType.F32, 2, -1));
    assertThrows(
        InvalidInputException.class, () -> Tensor.wrap(ByteBuffer.allocate(16), DType.F32, 4));
    assertThrows(
        InvalidInputException.class,
        () ->
            Tensor.wrap(ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder()), DType.F32, 4));
    try (Tensor t = Tensor.of(new long[] {1, 2}, 2)) {
      assertThrows(InvalidInputException.class, t::toFloatArray);
    }
  }

  @Test
  void closedTensorRefusesAccess() {
    Tensor t = Tensor.of(new float[] {1, 2}, 2);
    t.close();
    t.close();
    assertTrue(t.isClosed());
    assertThrows(IllegalStateException.class, t::toFloatArray);
  }

  private float[] randomFloats(int n) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) ((random.nextDouble() * 2 - 1) * Math.pow(10, random.nextInt(-3, 4)));
    }
    return v;
  }
}
