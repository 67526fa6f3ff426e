package io.kiln.execution.batching;

import io.kiln.Tensor;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/** Stacks tensors along axis 0 (padding axis 1 with zeros) and cuts them apart again. */
final class RowTensors {
  private RowTensors() {}

  /** Stacks {@code parts}; when {@code padSeq}, axis 1 is padded with zeros to the longest. */
  static Tensor concat(List<Tensor> parts, boolean padSeq) {
    Tensor first = parts.get(0);
    long[] shape = first.shape();
    long rows = 0;
    long seq = shape.length > 1 ? shape[1] : 1;
    for (Tensor t : parts) {
      rows += t.dim(0);
      if (padSeq) {
        seq = Math.max(seq, t.dim(1));
      }
    }
    shape[0] = rows;
    if (padSeq) {
      shape[1] = seq;
    }
    Tensor out = Tensor.allocate(first.dtype(), shape);
    long row = 0;
    for (Tensor t : parts) {
      copy(t, 0, out, row, t.dim(0), padSeq ? t.dim(1) : -1);
      row += t.dim(0);
    }
    return out;
  }

  /** Rows {@code [from, from + rows)} of {@code src}, cut to {@code seq} positions when >= 0. */
  static Tensor slice(Tensor src, long from, long rows, long seq) {
    long[] shape = src.shape();
    shape[0] = rows;
    if (seq >= 0) {
      shape[1] = seq;
    }
    Tensor out = Tensor.allocate(src.dtype(), shape);
    if (seq < 0) {
      long rowBytes = src.byteSize() / Math.max(1, src.dim(0));
      Pointer.memcpy(
          out.pointer(), new BytePointer(src.pointer()).position(from * rowBytes), rows * rowBytes);
    } else {
      long inner = innerElements(shape) * src.dtype().byteSize();
      long srcRow = src.dim(1) * inner;
      BytePointer s = new BytePointer(src.pointer());
      BytePointer d = new BytePointer(out.pointer());
      for (long r = 0; r < rows; r++) {
        Pointer.memcpy(d.position(r * seq * inner), s.position((from + r) * srcRow), seq * inner);
      }
    }
    return out;
  }

  /** Copies {@code rows} rows of {@code src} into {@code dst} at row {@code at}. */
  private static void copy(Tensor src, long srcRow0, Tensor dst, long at, long rows, long seq) {
    BytePointer s = new BytePointer(src.pointer());
    BytePointer d = new BytePointer(dst.pointer());
    if (seq < 0) {
      long rowBytes = src.byteSize() / Math.max(1, src.dim(0));
      Pointer.memcpy(d.position(at * rowBytes), s.position(srcRow0 * rowBytes), rows * rowBytes);
      return;
    }
    long inner = innerElements(src.shape()) * src.dtype().byteSize();
    long srcRow = src.dim(1) * inner;
    long dstRow = dst.dim(1) * inner;
    for (long r = 0; r < rows; r++) {
      Pointer.memcpy(
          d.position((at + r) * dstRow), s.position((srcRow0 + r) * srcRow), seq * inner);
    }
  }

  private static long innerElements(long[] shape) {
    long n = 1;
    for (int a = 2; a < shape.length; a++) {
      n *= shape[a];
    }
    return n;
  }
}
