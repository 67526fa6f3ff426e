package io.kiln.execution.batch;

import io.kiln.Tensor;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/** Stacks tensors along the batch axis and slices them back, padding axis 1 with zeros. */
public final class RowOps {
  private RowOps() {}

  /**
   * Concatenates {@code parts} along axis 0. With {@code paddedLength >= 0}, axis 1 of every part
   * is zero-padded at the end to that length; all other axes must agree.
   */
  public static Tensor stack(List<Tensor> parts, long paddedLength) {
    Tensor first = parts.get(0);
    long[] shape = first.shape();
    long rows = 0;
    for (Tensor p : parts) {
      rows += p.dim(0);
    }
    shape[0] = rows;
    if (paddedLength >= 0 && shape.length >= 2) {
      shape[1] = paddedLength;
    }
    Tensor out = Tensor.allocate(first.dtype(), shape);
    long inner = innerBytes(shape, first.dtype().byteSize());
    long outRowBytes = shape.length >= 2 ? shape[1] * inner : first.dtype().byteSize();
    BytePointer dst = out.pointer();
    long row = 0;
    for (Tensor p : parts) {
      BytePointer src = p.pointer();
      long partRowBytes = p.rank() >= 2 ? p.dim(1) * inner : p.dtype().byteSize();
      for (long r = 0; r < p.dim(0); r++, row++) {
        Pointer.memcpy(
            dst.position(row * outRowBytes), src.position(r * partRowBytes), partRowBytes);
      }
      src.position(0);
    }
    dst.position(0);
    return out;
  }

  /**
   * Copies rows {@code [start, start + count)} of {@code t}; with {@code keepLength >= 0}, axis 1
   * is cut to its first {@code keepLength} entries.
   */
  public static Tensor slice(Tensor t, long start, long count, long keepLength) {
    long[] shape = t.shape();
    long inner = innerBytes(shape, t.dtype().byteSize());
    long srcRowBytes = shape.length >= 2 ? shape[1] * inner : t.dtype().byteSize();
    shape[0] = count;
    if (keepLength >= 0 && shape.length >= 2) {
      shape[1] = keepLength;
    }
    long dstRowBytes = shape.length >= 2 ? shape[1] * inner : t.dtype().byteSize();
    Tensor out = Tensor.allocate(t.dtype(), shape);
    BytePointer src = t.pointer();
    BytePointer dst = out.pointer();
    for (long r = 0; r < count; r++) {
      Pointer.memcpy(
          dst.position(r * dstRowBytes), src.position((start + r) * srcRowBytes), dstRowBytes);
    }
    src.position(0);
    dst.position(0);
    return out;
  }

  /** Bytes of one element of axis 1 (the product of axes 2.. times the element size). */
  private static long innerBytes(long[] shape, int elementBytes) {
    long n = elementBytes;
    for (int i = 2; i < shape.length; i++) {
      n *= shape[i];
    }
    return n;
  }
}
