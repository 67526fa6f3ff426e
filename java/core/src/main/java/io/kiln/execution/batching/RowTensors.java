package io.kiln.execution.batching;

import io.kiln.Tensor;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Stacks tensors along axis 0 (padding axis 1 with zeros) and cuts them apart again. Reads through
 * private pointer views, so the tensors' own pointers are never moved (callers may share them).
 */
public final class RowTensors {
  private RowTensors() {}

  /**
   * Stacks {@code parts} along axis 0. With {@code paddedLength >= 0}, axis 1 of every part is
   * zero-padded at the end to that length; all other axes must agree.
   */
  public static Tensor concat(List<Tensor> parts, long paddedLength) {
    Tensor first = parts.get(0);
    long[] shape = first.shape();
    boolean pad = paddedLength >= 0 && shape.length > 1;
    long rows = 0;
    for (Tensor t : parts) {
      rows += t.dim(0);
    }
    shape[0] = rows;
    if (pad) {
      shape[1] = paddedLength;
    }
    Tensor out = Tensor.allocate(first.dtype(), shape);
    long row = 0;
    for (Tensor t : parts) {
      copy(t, out, row, pad ? t.dim(1) : -1);
      row += t.dim(0);
    }
    return out;
  }

  /**
   * Rows {@code [from, from + rows)} of {@code src}; with {@code keepLength >= 0}, axis 1 is cut to
   * its first {@code keepLength} entries.
   */
  public static Tensor slice(Tensor src, long from, long rows, long keepLength) {
    long[] shape = src.shape();
    boolean cut = keepLength >= 0 && shape.length > 1;
    shape[0] = rows;
    if (cut) {
      shape[1] = keepLength;
    }
    Tensor out = Tensor.allocate(src.dtype(), shape);
    BytePointer s = new BytePointer(src.pointer());
    BytePointer d = new BytePointer(out.pointer());
    if (!cut) {
      long rowBytes = src.byteSize() / Math.max(1, src.dim(0));
      Pointer.memcpy(d, s.position(from * rowBytes), rows * rowBytes);
    } else {
      long inner = innerElements(shape) * src.dtype().byteSize();
      long srcRow = src.dim(1) * inner;
      for (long r = 0; r < rows; r++) {
        Pointer.memcpy(
            d.position(r * keepLength * inner),
            s.position((from + r) * srcRow),
            keepLength * inner);
      }
    }
    return out;
  }

  /** Copies all rows of {@code src} into {@code dst} from row {@code at}; {@code seq} as given. */
  private static void copy(Tensor src, Tensor dst, long at, long seq) {
    BytePointer s = new BytePointer(src.pointer());
    BytePointer d = new BytePointer(dst.pointer());
    long rows = src.dim(0);
    if (seq < 0) {
      long rowBytes = src.byteSize() / Math.max(1, rows);
      Pointer.memcpy(d.position(at * rowBytes), s, rows * rowBytes);
      return;
    }
    long inner = innerElements(src.shape()) * src.dtype().byteSize();
    long srcRow = src.dim(1) * inner;
    long dstRow = dst.dim(1) * inner;
    for (long r = 0; r < rows; r++) {
      Pointer.memcpy(d.position((at + r) * dstRow), s.position(r * srcRow), seq * inner);
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
