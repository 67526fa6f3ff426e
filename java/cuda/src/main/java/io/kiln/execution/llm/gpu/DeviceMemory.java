package io.kiln.execution.llm.gpu;

import io.kiln.cuda.Cuda;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * The device allocations and pinned host memory of one runner: whatever is allocated here is freed
 * by {@link #close}, device buffers in the order they were made, then the pinned host memory.
 */
final class DeviceMemory implements AutoCloseable {
  private final List<DeviceBuffer> buffers = new ArrayList<>();
  private final List<Pointer> pinned = new ArrayList<>();

  DeviceBuffer alloc(long bytes) {
    DeviceBuffer buffer = new DeviceBuffer(bytes);
    buffers.add(buffer);
    return buffer;
  }

  /** Bytes of the device buffers held now. */
  long deviceBytes() {
    long total = 0;
    for (DeviceBuffer buffer : buffers) {
      total += buffer.bytes;
    }
    return total;
  }

  /** Frees {@code buffer} now (null: nothing). */
  void free(DeviceBuffer buffer) {
    if (buffer != null) {
      buffers.remove(buffer);
      buffer.close();
    }
  }

  /** Page-locked host memory, for copies that run asynchronously on a stream. */
  Pointer pinnedHost(long bytes) {
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      Cuda.check(cudart.cudaMallocHost(out, bytes), "cudaMallocHost of " + bytes + " bytes");
      Pointer host = Cuda.at(out.get(0).address());
      pinned.add(host);
      return host;
    }
  }

  @Override
  public void close() {
    for (DeviceBuffer buffer : buffers) {
      buffer.close();
    }
    buffers.clear();
    for (Pointer host : pinned) {
      cudart.cudaFreeHost(host);
    }
    pinned.clear();
  }
}
