package io.kiln.engine.trt;

import static org.bytedeco.cuda.global.cudart.cudaFreeHost;
import static org.bytedeco.cuda.global.cudart.cudaMallocHost;

import io.kiln.cuda.Cuda;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.LongFunction;
import org.bytedeco.javacpp.Pointer;

/**
 * Pinned host buffers that outputs are copied into straight from the device and handed to the
 * caller as tensors; closing a tensor gives its buffer back. A run then costs one device-to-host
 * copy into memory that is already mapped, instead of a copy to staging plus a copy into freshly
 * allocated (page-faulting) memory. Thread-safe: tensors may be closed on any thread.
 */
final class PinnedPool implements AutoCloseable {
  private final LongFunction<Pointer> allocate;
  private final Consumer<Pointer> free;
  private final int keepPerSize;
  private final long maxIdleBytes;
  private final Map<Long, ArrayDeque<Pointer>> idle = new HashMap<>();
  private long idleBytes;
  private long allocations;
  private boolean closed;

  /**
   * Keeps at most {@code keepPerSize} idle buffers of one size and {@code maxIdleBytes} in all;
   * callers ask for a few sizes (a bucket's full output), so the pool stays small.
   */
  PinnedPool(
      LongFunction<Pointer> allocate, Consumer<Pointer> free, int keepPerSize, long maxIdleBytes) {
    this.allocate = allocate;
    this.free = free;
    this.keepPerSize = keepPerSize;
    this.maxIdleBytes = maxIdleBytes;
  }

  /** Page-locked memory from the CUDA runtime. */
  static PinnedPool cudaHost(int keepPerSize, long maxIdleBytes) {
    return new PinnedPool(
        bytes -> {
          Pointer p = new Pointer();
          Cuda.check(cudaMallocHost(p, bytes), "cudaMallocHost (" + bytes + " bytes)");
          return p;
        },
        p -> cudaFreeHost(p),
        keepPerSize,
        maxIdleBytes);
  }

  /** A buffer of exactly {@code bytes} (at least 1), reused when one of that size is idle. */
  synchronized Pointer acquire(long bytes) {
    long size = Math.max(1, bytes);
    ArrayDeque<Pointer> q = idle.get(size);
    if (q != null && !q.isEmpty()) {
      idleBytes -= size;
      return q.pop();
    }
    allocations++;
    return allocate.apply(size);
  }

  /** Takes a buffer back; freed at once when the pool is closed or already keeps enough. */
  synchronized void release(Pointer p, long bytes) {
    long size = Math.max(1, bytes);
    ArrayDeque<Pointer> q = idle.computeIfAbsent(size, k -> new ArrayDeque<>());
    if (closed || q.size() >= keepPerSize || idleBytes + size > maxIdleBytes) {
      free.accept(p);
    } else {
      idleBytes += size;
      q.push(p);
    }
  }

  /** How many buffers were ever allocated (a steady state allocates none). */
  synchronized long allocations() {
    return allocations;
  }

  synchronized int idleCount() {
    return idle.values().stream().mapToInt(ArrayDeque::size).sum();
  }

  /** Frees idle buffers; buffers still held by open tensors are freed when those close. */
  @Override
  public synchronized void close() {
    closed = true;
    for (ArrayDeque<Pointer> q : idle.values()) {
      q.forEach(free);
    }
    idle.clear();
    idleBytes = 0;
  }
}
