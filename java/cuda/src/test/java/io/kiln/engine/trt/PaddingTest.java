package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.Tensor;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.ShapeBuckets;
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
  void outputsAreCutToTheRequestsRowsAndLengthWithPitchedCopies() {
    IoTensor hidden = new IoTensor("h", io.kiln.DType.F32, new long[] {-1, -1, 3}, false);
    BucketBuffer b = new BucketBuffer(hidden, new long[] {4, 8, 3});
    Padding.OutputCut cut = Padding.cut(b, 4, 8, 2, 5);
    assertArrayEquals(new long[] {2, 5, 3}, cut.shape());
    assertTrue(cut.seqCut());
    assertEquals(2 * 5 * 3 * 4, cut.bytes());
    assertEquals(5 * 3 * 4, cut.rowPitch());
    assertEquals(8 * 3 * 4, cut.srcRowPitch());

    // What cudaMemcpy2DAsync does with those pitches, on the host: rows of rowPitch bytes taken
    // every srcRowPitch bytes.
    float[] bucket = new float[4 * 8 * 3];
    for (int i = 0; i < bucket.length; i++) {
      bucket[i] = i;
    }
    float[] got = new float[(int) (cut.bytes() / 4)];
    int w = (int) (cut.rowPitch() / 4);
    for (int r = 0; r < 2; r++) {
      System.arraycopy(bucket, (int) (r * cut.srcRowPitch() / 4), got, r * w, w);
    }
    Tensor full = Tensor.of(bucket, 4, 8, 3);
    Tensor expected = Tensor.allocate(io.kiln.DType.F32, 2, 5, 3);
    Padding.copyRows(full.pointer(), full.shape(), expected.pointer(), expected.shape(), 2, 5, 4);
    assertArrayEquals(expected.toFloatArray(), got);

    Padding.OutputCut rowsOnly = Padding.cut(b, 4, 8, 3, 8);
    assertFalse(rowsOnly.seqCut(), "a full-length request is one contiguous prefix");
    assertArrayEquals(new long[] {3, 8, 3}, rowsOnly.shape());
    assertEquals(3 * 8 * 3 * 4, rowsOnly.bytes());

    IoTensor pooled = new IoTensor("p", io.kiln.DType.F16, new long[] {-1, 16}, false);
    BucketBuffer pb = new BucketBuffer(pooled, new long[] {4, 16});
    Padding.OutputCut noSeq = Padding.cut(pb, 4, 8, 1, 5);
    assertArrayEquals(new long[] {1, 16}, noSeq.shape(), "a fixed axis 1 is not the sequence");
    assertEquals(16 * 2, noSeq.bytes());
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
