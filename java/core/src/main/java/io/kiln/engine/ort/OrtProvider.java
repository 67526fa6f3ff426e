package io.kiln.engine.ort;

import io.kiln.Backend;
import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.engine.Engine;
import io.kiln.engine.EngineOptions;
import io.kiln.engine.EngineProvider;
import io.kiln.engine.PrecisionGraph;
import io.kiln.model.ModelSource;
import java.util.Optional;

/** ONNX Runtime on the CPU; available wherever its bundled natives load. */
public final class OrtProvider implements EngineProvider {
  @Override
  public Backend backend() {
    return Backend.ONNXRUNTIME;
  }

  @Override
  public Device device() {
    return Device.CPU;
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

  /** Its integer kernels want UINT8 activations, with one Q/DQ pair per reader. */
  @Override
  public PrecisionGraph graphFor(Precision precision) {
    return precision == Precision.INT8
        ? PrecisionGraph.int8(new PrecisionGraph.QdqLayout(true, false, false), false)
        : PrecisionGraph.of(precision);
  }

  @Override
  public Engine open(ModelSource model, EngineOptions options) {
    return OrtEngine.load(model, options.intraOpThreads());
  }
}
