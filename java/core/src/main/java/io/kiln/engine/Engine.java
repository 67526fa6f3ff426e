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

  /** Drops cached per-shape state (captured graphs, bound buffers). */
  default void clearCache() {}

  @Override
  void close();
}
