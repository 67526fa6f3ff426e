package io.kiln.engine;

import io.kiln.Tensor;
import io.kiln.TensorInfo;
import java.util.List;
import java.util.Map;

/**
 * One compiled model on one backend. A session validates inputs before it calls {@link #run}, so
 * engines may assume that names, dtypes, ranks and fixed dimensions match {@link #inputs()}.
 */
public interface Engine extends AutoCloseable {
  /** A short name such as {@code onnxruntime-cpu} or {@code tensorrt}. */
  String backendName();

  /** What the engine runs on, for logs and reports, such as a CPU or GPU model name. */
  String deviceDescription();

  List<TensorInfo> inputs();

  List<TensorInfo> outputs();

  /** Runs once. The caller owns the returned tensors, in the model's output order. */
  Map<String, Tensor> run(Map<String, Tensor> inputs);

  /**
   * Whether merging concurrent calls into one run was measured to raise this engine's throughput;
   * sessions merge them only then, unless told otherwise.
   */
  default boolean mergesConcurrentCalls() {
    return false;
  }

  /**
   * How many rows to put in one run when the caller splits work into runs itself (an embedder over
   * many texts), at most {@code maxRows}: where smaller runs were measured faster, fewer.
   */
  default int preferredRunRows(int maxRows) {
    return maxRows;
  }

  /**
   * Whether runs execute off the host's cores (on a GPU), so that host work such as tokenizing the
   * next inputs overlaps them instead of competing with them for the same cores.
   */
  default boolean computesOffHost() {
    return false;
  }

  /** Drops cached per-shape state (captured graphs, bound buffers). */
  default void clearCache() {}

  /**
   * Turns new runs away, waits (bounded) for those inside, cuts short any still running where the
   * backend can, and only then frees native memory.
   */
  @Override
  void close();
}
