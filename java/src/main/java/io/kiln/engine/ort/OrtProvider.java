package io.kiln.engine.ort;

import io.kiln.engine.Engine;
import io.kiln.engine.EngineOptions;
import io.kiln.engine.EngineProvider;
import io.kiln.engine.ModelSource;
import java.util.Optional;

/** ONNX Runtime on the CPU; available wherever its bundled natives load. */
public final class OrtProvider implements EngineProvider {
  @Override
  public String name() {
    return "onnxruntime";
  }

  @Override
  public Optional<String> unavailableReason() {
    try {
      OrtEngine.version();
      return Optional.empty();
    } catch (Throwable t) {
      return Optional.of("ONNX Runtime natives do not load: " + t);
    }
  }

  @Override
  public Engine open(ModelSource model, EngineOptions options) {
    return OrtEngine.load(model, options.intraOpThreads());
  }
}
