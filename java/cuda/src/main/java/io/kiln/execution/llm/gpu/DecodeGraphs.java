package io.kiln.execution.llm.gpu;

import io.kiln.cuda.CudaGraph;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The decode steps' CUDA graphs, one per batch bucket, captured with {@link CudaGraph} on the
 * runner's stream (thread-local capture mode). Kernel arguments hold device addresses, so the
 * graphs must be captured again whenever a buffer they read moves (the KV pool).
 */
final class DecodeGraphs implements AutoCloseable {
  /** What a decode step of one bucket does, for the capture. */
  interface DecodeStep {
    /** Fills and uploads the inputs of an empty decode step of {@code bucket} rows. */
    void prepare(int bucket);

    /** Enqueues the forward pass of a decode step of {@code bucket} rows. */
    void enqueue(int bucket);

    /** Waits for the stream. */
    void sync();
  }

  private final CUstream_st stream;
  private final Map<Integer, CudaGraph> graphs = new LinkedHashMap<>();
  private String failure;

  DecodeGraphs(CUstream_st stream) {
    this.stream = stream;
  }

  /**
   * Captures one graph per bucket, each after an eager run of the same step (cuBLAS picks and loads
   * its kernels outside the capture). If the driver refuses a capture, every graph is dropped and
   * {@link #failure} says why: the runner then decodes eagerly rather than not starting at all.
   */
  void capture(int[] buckets, DecodeStep step) {
    for (int bucket : buckets) {
      step.prepare(bucket);
      // An eager run first: cuBLAS picks and loads its kernels outside the capture.
      step.enqueue(bucket);
      step.sync();
      try {
        graphs.put(bucket, CudaGraph.capture(stream, () -> step.enqueue(bucket)));
      } catch (RuntimeException e) {
        close();
        failure = "decode graph capture failed at batch " + bucket + ": " + e.getMessage();
        System.err.println("[kiln] " + failure + "; decoding eagerly");
        step.sync();
        return;
      }
    }
  }

  /** Why the last capture failed, or null. */
  String failure() {
    return failure;
  }

  /** The graph of {@code bucket}, or null (none captured). */
  CudaGraph get(int bucket) {
    return graphs.get(bucket);
  }

  int size() {
    return graphs.size();
  }

  /** Destroys every graph. */
  @Override
  public void close() {
    for (CudaGraph graph : graphs.values()) {
      graph.close();
    }
    graphs.clear();
  }
}
