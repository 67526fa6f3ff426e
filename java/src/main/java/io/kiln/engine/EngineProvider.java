package io.kiln.engine;

import java.util.Optional;

/** A backend that can compile models into engines, when its native libraries are present. */
public interface EngineProvider {
  /** Short backend name, such as {@code tensorrt}. */
  String name();

  /** Why this backend cannot run here, or empty when it can. Must not throw. */
  Optional<String> unavailableReason();

  Engine open(ModelSource model, EngineOptions options);
}
