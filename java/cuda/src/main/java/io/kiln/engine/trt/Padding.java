package io.kiln.engine.trt;

import io.kiln.Tensor;
import java.util.Map;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Copies a request of {@code batch} rows and {@code seq} tokens into a bucket's larger staging
 * buffers (the padding is zero: token 0, mask 0) and says how the outputs are cut back to the
 * request's rows and, on outputs with a dynamic sequence axis, its length.
 */
final class Padding {
  private Padding() {}

  static void pack(
      Map<String, Tensor> inputs, Iterable<BucketBuffer> buffers, long batch, long seq) {
    for (BucketBuffer b : buffers) {
      if (!b.io.input()) {
        continue;
      }
      Tensor t = inputs.get(b.io.name());
      // int64 ids for an engine whose parser narrowed them to int32
      Tensor narrowed =
          t.dtype() != b.io.dtype() ? Tensor.of(toInts(t.toLongArray()), t.shape()) : null;
      Tensor src = narrowed != null ? narrowed : t;
      Pointer.memset(b.host, 0, b.bytes);
      copyRows(
          src.pointer(),
          src.shape(),
          b.host,
          b.shape,
          batch,
          b.io.hasSeqAxis() ? seq : -1,
          b.io.dtype().byteSize());
      if (narrowed != null) {
        narrowed.close();
      }
    }
  }

  private static int[] toInts(long[] v) {
    int[] out = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Math.toIntExact(v[i]);
    }
    return out;
  }

  /**
   * What a caller gets of one output: the bucket's shape cut to the request's rows (when axis 0 is
   * the batch) and length (when axis 1 is a dynamic sequence axis of the bucket's length).
   */
  record OutputCut(long[] shape, boolean seqCut, long bytes, long rowPitch, long srcRowPitch) {}

  static OutputCut cut(BucketBuffer b, long bucketBatch, long bucketSeq, long batch, long seq) {
    long[] shape = b.shape.clone();
    boolean rows = shape.length > 0 && shape[0] == bucketBatch;
    if (rows) {
      shape[0] = batch;
    }
    boolean seqCut = rows && b.io.hasSeqAxis() && shape[1] == bucketSeq && seq != bucketSeq;
    if (seqCut) {
      shape[1] = seq;
    }
    int elem = b.io.dtype().byteSize();
    long inner = 1;
    for (int a = 2; a < shape.length; a++) {
      inner *= shape[a];
    }
    long bytes = elem * BucketBuffer.elements(shape);
    return seqCut
        ? new OutputCut(shape, true, bytes, seq * inner * elem, bucketSeq * inner * elem)
        : new OutputCut(shape, false, bytes, 0, 0);
  }

  /**
   * Copies {@code rows} rows from {@code src} to {@code dst}; when {@code seq >= 0}, only the first
   * {@code seq} positions of axis 1 of each row, everything after axis 1 included.
   */
  static void copyRows(
      Pointer src, long[] srcShape, Pointer dst, long[] dstShape, long rows, long seq, int elem) {
    long inner = 1;
    for (int a = 2; a < srcShape.length; a++) {
      inner *= srcShape[a];
    }
    if (seq < 0) {
      long rowBytes = elem * inner * (srcShape.length > 1 ? srcShape[1] : 1);
      Pointer.memcpy(dst, src, rows * rowBytes);
      return;
    }
    long srcRow = srcShape[1] * inner * elem;
    long dstRow = dstShape[1] * inner * elem;
    long bytes = seq * inner * elem;
    BytePointer s = new BytePointer(src);
    BytePointer d = new BytePointer(dst);
    for (long r = 0; r < rows; r++) {
      Pointer.memcpy(d.position(r * dstRow), s.position(r * srcRow), bytes);
    }
  }
}
