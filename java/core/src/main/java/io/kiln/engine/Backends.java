package io.kiln.engine;

import io.kiln.Backend;
import io.kiln.BackendException;
import io.kiln.Device;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Chooses the backend for a session and says why, in one log line. */
public final class Backends {
  private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

  private static List<EngineProvider> providers;

  private Backends() {}

  /** Every provider on the classpath, loaded once. */
  public static synchronized List<EngineProvider> providers() {
    if (providers == null) {
      providers =
          ServiceLoader.load(EngineProvider.class, Backends.class.getClassLoader()).stream()
              .map(ServiceLoader.Provider::get)
              .toList();
    }
    return providers;
  }

  /** Picks a provider for the requested backend and device. */
  public static EngineProvider choose(Backend backend, Device device) {
    switch (backend) {
      case ONNXRUNTIME -> {
        if (device == Device.CUDA) {
          throw new BackendException(
              "device cuda needs the tensorrt backend; onnxruntime runs on the CPU here");
        }
        LOG.info("backend: onnxruntime-cpu (requested)");
        return cpu();
      }
      case TENSORRT -> {
        if (device == Device.CPU) {
          throw new BackendException("the tensorrt backend needs device cuda or auto, not cpu");
        }
        EngineProvider trt = find(Backend.TENSORRT);
        String why = whyUnavailable(trt).orElse(null);
        if (why != null) {
          throw new BackendException("tensorrt backend requested but unavailable: " + why);
        }
        LOG.info("backend: tensorrt (requested)");
        return trt;
      }
      case AUTO -> {
        if (device == Device.CPU) {
          LOG.info("backend: onnxruntime-cpu (device cpu requested)");
          return cpu();
        }
        EngineProvider trt = find(Backend.TENSORRT);
        Optional<String> why = whyUnavailable(trt);
        if (why.isEmpty()) {
          LOG.info("backend: tensorrt (auto: CUDA device and TensorRT libraries found)");
          return trt;
        }
        if (device == Device.CUDA) {
          throw new BackendException("device cuda requested but unavailable: " + why.get());
        }
        LOG.info("backend: onnxruntime-cpu (auto: {})", why.get());
        return cpu();
      }
      default -> throw new BackendException("unknown backend " + backend);
    }
  }

  private static EngineProvider cpu() {
    EngineProvider ort = find(Backend.ONNXRUNTIME);
    if (ort == null) {
      throw new BackendException("no onnxruntime engine provider on the classpath");
    }
    return ort;
  }

  private static EngineProvider find(Backend backend) {
    return providers().stream().filter(p -> p.backend() == backend).findFirst().orElse(null);
  }

  private static Optional<String> whyUnavailable(EngineProvider provider) {
    if (provider == null) {
      return Optional.of("kiln-cuda, which holds the TensorRT engine, is not on the classpath");
    }
    return provider.unavailableReason();
  }
}
