package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.Tensor;
import io.kiln.execution.graph.Bucket;
import io.kiln.execution.graph.ShapeBuckets;
import java.util.List;
import org.junit.jupiter.api.Test;

class PaddingTest {
  @Test
  void copyRowsPadsTheSequenceAxisAndCutsItBack() {
    Tensor src = Tensor.of(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 2, 3, 2);
    Tensor padded = Tensor.allocate(io.kiln.DType.F32, 4, 5, 2);
    Padding.copyRows(src.pointer(), src.shape(), padded.pointer(), padded.shape(), 2, 3, 4);
    float[] p = padded.toFloatArray();
    assertArrayEquals(
        new float[] {1, 2, 3, 4, 5, 6, 0, 0, 0, 0}, java.util.Arrays.copyOfRange(p, 0, 10));
    assertArrayEquals(
        new float[] {7, 8, 9, 10, 11, 12, 0, 0, 0, 0}, java.util.Arrays.copyOfRange(p, 10, 20));
    for (int i = 20; i < p.length; i++) {
      assertEquals(0f, p[i]);
    }
    Tensor back = Tensor.allocate(io.kiln.DType.F32, 2, 3, 2);
    Padding.copyRows(padded.pointer(), padded.shape(), back.pointer(), back.shape(), 2, 3, 4);
    assertArrayEquals(src.toFloatArray(), back.toFloatArray());
  }

  @Test
  void staticProfilesBecomeTheBuckets() {
    ShapeBuckets b =
        TrtEngine.derivedBuckets(
            ShapeProfile.perBucket(new long[] {1, 8, 32, 64}, new long[] {128}));
    assertArrayEquals(new int[] {1, 8, 32, 64}, b.batches());
    assertArrayEquals(new int[] {128}, b.seqs());
    assertEquals(new Bucket(8, 128), b.bucketFor(5, 100));
    ShapeBuckets d = TrtEngine.derivedBuckets(List.of(ShapeProfile.of("1:8:32", "1:128:256")));
    assertArrayEquals(new int[] {1, 2, 4, 8, 16, 24, 32}, d.batches());
    assertEquals(256, d.maxSeq());
  }
}
