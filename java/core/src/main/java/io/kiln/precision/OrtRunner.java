package io.kiln.precision;

import io.kiln.BackendException;
import io.kiln.DType;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.engine.ort.OrtEngine;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.OnnxModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Runs an ONNX graph on the ONNX Runtime CPU engine and returns its float outputs as arrays. The
 * precision passes use it to observe activations (calibration) and to compare a transformed graph
 * with the original. Models past the 2 GiB protobuf limit are staged on disk with external data.
 */
public final class OrtRunner implements AutoCloseable {
  /** A float output: row-major values and shape. */
  public record Output(long[] shape, float[] data) {}

  private final OrtEngine engine;
  private final Path staged;

  /** {@code threads} compute threads; 0 for all cores. */
  public OrtRunner(OnnxModel model, int threads) {
    int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    ModelSource source;
    Path dir = null;
    byte[] bytes = model.fitsInMemory() ? model.toBytes() : null;
    if (bytes != null) {
      source = ModelSource.of("graph", bytes);
    } else {
      try {
        dir = Files.createTempDirectory("kiln-ort");
        model.save(dir.resolve("model.onnx"), true);
        source = ModelSource.of(dir.resolve("model.onnx"));
      } catch (IOException e) {
        throw new BackendException("cannot stage the model for ONNX Runtime: " + e, e);
      }
    }
    this.staged = dir;
    this.engine = OrtEngine.load(source, n);
  }

  /** Runs once on the inputs the graph declares; returns the float outputs by name. */
  public Map<String, Output> run(Map<String, Tensor> inputs) {
    Map<String, Tensor> feed = new LinkedHashMap<>();
    for (TensorInfo info : engine.inputs()) {
      Tensor t = inputs.get(info.name());
      if (t == null) {
        throw new io.kiln.InvalidInputException("missing input " + info.name());
      }
      feed.put(info.name(), t);
    }
    Map<String, Tensor> results = engine.run(feed);
    Map<String, Output> out = new LinkedHashMap<>();
    try {
      for (Map.Entry<String, Tensor> e : results.entrySet()) {
        Tensor t = e.getValue();
        if (t.dtype() == DType.F32 || t.dtype() == DType.F16) {
          out.put(e.getKey(), new Output(t.shape(), t.toFloatArray()));
        }
      }
    } finally {
      results.values().forEach(Tensor::close);
    }
    return out;
  }

  @Override
  public void close() {
    engine.close();
    if (staged != null) {
      try (var files = Files.walk(staged)) {
        files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException ignored) {
        // A leftover temp dir is harmless.
      }
    }
  }
}
