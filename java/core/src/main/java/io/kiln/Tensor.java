package io.kiln;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * A dense, row-major tensor in native memory. A tensor either owns its memory (freed by {@link
 * #close()}) or is a view over memory owned by someone else: a direct buffer or a backend's output
 * value, which {@code close()} releases through the owner's release action.
 *
 * <p>Not thread-safe.
 */
public final class Tensor implements AutoCloseable {
  private final DType dtype;
  private final long[] shape;
  private final long elementCount;
  private final BytePointer data;
  private final Runnable release;

  // Keeps a wrapped buffer or pointer reachable while this view is open.
  @SuppressWarnings("unused")
  private final Object keepAlive;

  private boolean closed;

  private Tensor(DType dtype, long[] shape, BytePointer data, Runnable release, Object keepAlive) {
    this.dtype = dtype;
    this.shape = shape;
    this.elementCount = elementCount(shape);
    this.data = data;
    this.release = release;
    this.keepAlive = keepAlive;
  }

  /** A zero-filled tensor that owns its memory. */
  public static Tensor allocate(DType dtype, long... shape) {
    long[] s = checkedShape(shape);
    long bytes;
    try {
      bytes = Math.multiplyExact(elementCount(s), dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new InvalidInputException(
          "shape " + Arrays.toString(s) + " of " + dtype + " is larger than memory can address");
    }
    BytePointer p = new BytePointer(Math.max(bytes, 1));
    Pointer.memset(p, 0, Math.max(bytes, 1));
    p.capacity(bytes);
    return new Tensor(dtype, s, p, p::deallocate, null);
  }

  public static Tensor of(float[] values, long... shape) {
    Tensor t = allocate(DType.F32, checkedLength(values.length, shape));
    t.buffer().asFloatBuffer().put(values);
    return t;
  }

  public static Tensor of(long[] values, long... shape) {
    Tensor t = allocate(DType.I64, checkedLength(values.length, shape));
    t.buffer().asLongBuffer().put(values);
    return t;
  }

  public static Tensor of(int[] values, long... shape) {
    Tensor t = allocate(DType.I32, checkedLength(values.length, shape));
    t.buffer().asIntBuffer().put(values);
    return t;
  }

  public static Tensor of(byte[] values, long... shape) {
    Tensor t = allocate(DType.I8, checkedLength(values.length, shape));
    t.buffer().put(values);
    return t;
  }

  public static Tensor of(boolean[] values, long... shape) {
    Tensor t = allocate(DType.BOOL, checkedLength(values.length, shape));
    ByteBuffer b = t.buffer();
    for (boolean v : values) {
      b.put((byte) (v ? 1 : 0));
    }
    return t;
  }

  /** Floats stored as {@code dtype}: F32 as is, F16 and BF16 rounded to nearest even. */
  public static Tensor ofFloats(DType dtype, float[] values, long... shape) {
    if (dtype == DType.F32) {
      return of(values, shape);
    }
    if (dtype == DType.F8E4M3) {
      Tensor t = allocate(dtype, checkedLength(values.length, shape));
      ByteBuffer b = t.buffer();
      for (int i = 0; i < values.length; i++) {
        b.put(i, Float8.floatToE4m3(values[i]));
      }
      return t;
    }
    if (!dtype.isFloatingPoint()) {
      throw new InvalidInputException("ofFloats needs a floating-point dtype, not " + dtype);
    }
    Tensor t = allocate(dtype, checkedLength(values.length, shape));
    java.nio.ShortBuffer b = t.buffer().asShortBuffer();
    for (float v : values) {
      b.put(dtype == DType.F16 ? Float16.floatToHalf(v) : Float16.floatToBf16(v));
    }
    return t;
  }

  /**
   * A zero-copy view over a direct buffer, from its position. The buffer must be in native byte
   * order and hold at least the tensor's bytes; it stays reachable while the view is open.
   */
  public static Tensor wrap(ByteBuffer buffer, DType dtype, long... shape) {
    if (!buffer.isDirect()) {
      throw new InvalidInputException("Tensor.wrap needs a direct buffer; use Tensor.of to copy");
    }
    if (buffer.order() != ByteOrder.nativeOrder()) {
      throw new InvalidInputException("Tensor.wrap needs a buffer in native byte order");
    }
    long[] s = checkedShape(shape);
    long bytes = Math.multiplyExact(elementCount(s), dtype.byteSize());
    if (buffer.remaining() < bytes) {
      throw new InvalidInputException(
          "buffer holds "
              + buffer.remaining()
              + " bytes but shape "
              + Arrays.toString(s)
              + " of "
              + dtype
              + " needs "
              + bytes);
    }
    BytePointer p = new BytePointer(buffer);
    p.position(0).capacity(bytes);
    return new Tensor(dtype, s, p, () -> {}, buffer);
  }

  /**
   * A view over native memory that another component owns (a backend's output, a device staging
   * buffer); {@code release} runs once on close.
   */
  public static Tensor wrapNative(Pointer address, DType dtype, long[] shape, Runnable release) {
    long[] s = checkedShape(shape);
    long bytes = Math.multiplyExact(elementCount(s), dtype.byteSize());
    BytePointer p = new BytePointer(address);
    p.position(0).capacity(bytes);
    return new Tensor(dtype, s, p, release, address);
  }

  public DType dtype() {
    return dtype;
  }

  public long[] shape() {
    return shape.clone();
  }

  public long dim(int axis) {
    return shape[axis];
  }

  public int rank() {
    return shape.length;
  }

  public long elementCount() {
    return elementCount;
  }

  public long byteSize() {
    return elementCount * dtype.byteSize();
  }

  /** The native memory; valid until {@link #close()}. */
  public BytePointer pointer() {
    checkOpen();
    return data;
  }

  /** A native-order view of the tensor's bytes; valid until {@link #close()}. */
  public ByteBuffer buffer() {
    checkOpen();
    if (byteSize() > Integer.MAX_VALUE) {
      throw new UnsupportedOperationException("tensor of " + byteSize() + " bytes is too large");
    }
    return data.position(0).limit(byteSize()).asByteBuffer().order(ByteOrder.nativeOrder());
  }

  /** The values as floats; F16 and BF16 are widened. */
  public float[] toFloatArray() {
    float[] out = new float[checkedArrayLength()];
    switch (dtype) {
      case F32 -> buffer().asFloatBuffer().get(out);
      case F16, BF16 -> {
        java.nio.ShortBuffer b = buffer().asShortBuffer();
        for (int i = 0; i < out.length; i++) {
          short s = b.get(i);
          out[i] = dtype == DType.F16 ? Float16.halfToFloat(s) : Float16.bf16ToFloat(s);
        }
      }
      case F8E4M3 -> {
        ByteBuffer b = buffer();
        for (int i = 0; i < out.length; i++) {
          out[i] = Float8.e4m3ToFloat(b.get(i));
        }
      }
      default -> throw new InvalidInputException("toFloatArray needs a float tensor, not " + dtype);
    }
    return out;
  }

  /** The values as longs; narrower integer types and bool are widened. */
  public long[] toLongArray() {
    long[] out = new long[checkedArrayLength()];
    ByteBuffer b = buffer();
    switch (dtype) {
      case I64 -> b.asLongBuffer().get(out);
      case I32 -> {
        java.nio.IntBuffer ib = b.asIntBuffer();
        for (int i = 0; i < out.length; i++) {
          out[i] = ib.get(i);
        }
      }
      case I8, BOOL -> {
        for (int i = 0; i < out.length; i++) {
          out[i] = b.get(i);
        }
      }
      default ->
          throw new InvalidInputException("toLongArray needs an integer tensor, not " + dtype);
    }
    return out;
  }

  public int[] toIntArray() {
    if (dtype != DType.I32) {
      throw new InvalidInputException("toIntArray needs an I32 tensor, not " + dtype);
    }
    int[] out = new int[checkedArrayLength()];
    buffer().asIntBuffer().get(out);
    return out;
  }

  public boolean[] toBooleanArray() {
    if (dtype != DType.BOOL) {
      throw new InvalidInputException("toBooleanArray needs a BOOL tensor, not " + dtype);
    }
    boolean[] out = new boolean[checkedArrayLength()];
    ByteBuffer b = buffer();
    for (int i = 0; i < out.length; i++) {
      out[i] = b.get(i) != 0;
    }
    return out;
  }

  /** The raw bytes, in native order, whatever the dtype. */
  public byte[] toByteArray() {
    byte[] out = new byte[Math.toIntExact(byteSize())];
    buffer().get(out);
    return out;
  }

  /** A copy that owns its memory. */
  public Tensor copy() {
    Tensor t = allocate(dtype, shape);
    Pointer.memcpy(t.data, pointer().position(0), byteSize());
    return t;
  }

  public boolean isClosed() {
    return closed;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      release.run();
    }
  }

  @Override
  public String toString() {
    return "Tensor(" + dtype + ", " + Arrays.toString(shape) + (closed ? ", closed)" : ")");
  }

  private void checkOpen() {
    if (closed) {
      throw new IllegalStateException("tensor is closed");
    }
  }

  private int checkedArrayLength() {
    if (elementCount > Integer.MAX_VALUE - 8) {
      throw new UnsupportedOperationException(elementCount + " elements do not fit a Java array");
    }
    return (int) elementCount;
  }

  static long elementCount(long[] shape) {
    long n = 1;
    for (long d : shape) {
      try {
        n = Math.multiplyExact(n, d);
      } catch (ArithmeticException e) {
        throw new InvalidInputException(
            "shape " + Arrays.toString(shape) + " holds more elements than a long can count");
      }
    }
    return n;
  }

  private static long[] checkedShape(long[] shape) {
    for (long d : shape) {
      if (d < 0) {
        throw new InvalidInputException("negative dimension in shape " + Arrays.toString(shape));
      }
    }
    return shape.clone();
  }

  private static long[] checkedLength(int length, long[] shape) {
    long[] s = shape.length == 0 && length != 1 ? new long[] {length} : shape;
    long n = elementCount(checkedShape(s));
    if (n != length) {
      throw new InvalidInputException(
          length + " values do not fill shape " + Arrays.toString(s) + " (" + n + " elements)");
    }
    return s;
  }
}
