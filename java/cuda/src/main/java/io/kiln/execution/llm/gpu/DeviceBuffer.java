package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.cuda.Cuda;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/** One cudaMalloc allocation. Closing frees it; closing twice is harmless. */
public final class DeviceBuffer implements AutoCloseable {
  final long bytes;
  private long address;

  public DeviceBuffer(long bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException("device allocation of " + bytes + " bytes");
    }
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      int err = cudart.cudaMalloc(out, bytes);
      if (err != cudart.cudaSuccess) {
        throw new BackendException(
            "cudaMalloc of "
                + bytes
                + " bytes failed (CUDA error "
                + err
                + "); free device memory: "
                + Cuda.memInfo()[0]
                + " bytes");
      }
      this.address = out.get(0).address();
    }
    this.bytes = bytes;
  }

  public long address() {
    if (address == 0) {
      throw new IllegalStateException("device buffer already freed");
    }
    return address;
  }

  /** Address {@code offset} bytes in, checked against the allocation. */
  long address(long offset) {
    if (offset < 0 || offset > bytes) {
      throw new IndexOutOfBoundsException("offset " + offset + " in a buffer of " + bytes);
    }
    return address() + offset;
  }

  Pointer pointer() {
    return Cuda.at(address());
  }

  void upload(float[] data) {
    upload(data, 0);
  }

  /** Copies floats to {@code byteOffset}. */
  void upload(float[] data, long byteOffset) {
    checkRange(byteOffset, 4L * data.length);
    try (FloatPointer host = new FloatPointer(data)) {
      Cuda.check(
          cudart.cudaMemcpy(
              Cuda.at(address() + byteOffset),
              host,
              4L * data.length,
              cudart.cudaMemcpyHostToDevice),
          "cudaMemcpy to device");
    }
  }

  void upload(byte[] data) {
    checkRange(0, data.length);
    try (BytePointer host = new BytePointer(data)) {
      Cuda.check(
          cudart.cudaMemcpy(pointer(), host, data.length, cudart.cudaMemcpyHostToDevice),
          "cudaMemcpy to device");
    }
  }

  void upload(int[] data) {
    checkRange(0, 4L * data.length);
    try (IntPointer host = new IntPointer(data)) {
      Cuda.check(
          cudart.cudaMemcpy(pointer(), host, 4L * data.length, cudart.cudaMemcpyHostToDevice),
          "cudaMemcpy to device");
    }
  }

  float[] downloadFloats(int count) {
    checkRange(0, 4L * count);
    float[] out = new float[count];
    try (FloatPointer host = new FloatPointer(count)) {
      Cuda.check(
          cudart.cudaMemcpy(host, pointer(), 4L * count, cudart.cudaMemcpyDeviceToHost),
          "cudaMemcpy to host");
      host.get(out);
    }
    return out;
  }

  int[] downloadInts(int count) {
    checkRange(0, 4L * count);
    int[] out = new int[count];
    try (IntPointer host = new IntPointer(count)) {
      Cuda.check(
          cudart.cudaMemcpy(host, pointer(), 4L * count, cudart.cudaMemcpyDeviceToHost),
          "cudaMemcpy to host");
      host.get(out);
    }
    return out;
  }

  /** Sets every byte to {@code value} (0xFF in every byte of a float is a NaN: the poison). */
  void fill(int value) {
    Cuda.check(cudart.cudaMemset(pointer(), value, bytes), "cudaMemset");
  }

  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || offset + length > bytes) {
      throw new IndexOutOfBoundsException(
          "copy of " + length + " bytes at " + offset + " into a buffer of " + bytes);
    }
  }

  @Override
  public void close() {
    if (address != 0) {
      int err = cudart.cudaFree(Cuda.at(address));
      address = 0;
      Cuda.check(err, "cudaFree");
    }
  }
}
