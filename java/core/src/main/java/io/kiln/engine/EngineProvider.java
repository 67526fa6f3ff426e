package io.kiln.engine;

import io.kiln.Backend;
import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.model.ModelSource;
import java.util.Optional;

/**
 * A backend that can compile models into engines, when its native libraries are present. Found
 * through {@link java.util.ServiceLoader}: kiln-core registers ONNX Runtime, kiln-cuda TensorRT.
 */
public interface EngineProvider {
  Backend backend();

  /** Where its engines run: {@link Device#CPU} or {@link Device#CUDA}. */
  Device device();

  /** Why this backend cannot run here, or empty when it can. Must not throw. */
  Optional<String> unavailableReason();

  /** The form of graph this backend compiles for {@code precision}. */
  PrecisionGraph graphFor(Precision precision);

  Engine open(ModelSource model, EngineOptions options);
}
