package io.kiln.engine;

import io.kiln.BackendException;
import io.kiln.engine.ort.OrtProvider;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Chooses the backend for a session and says why, in one log line. */
public final class Backends {
  private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

  /** Backends in order of preference for {@code auto}: GPU first, then the CPU fallback. */
  private static final List<EngineProvider> GPU_PROVIDERS = List.of();

  private static final EngineProvider CPU_PROVIDER = new OrtProvider();

  private Backends() {}

  /** The providers that can run on a CUDA device, in order of preference. */
  public static List<EngineProvider> gpuProviders() {
    return GPU_PROVIDERS;
  }

  /**
   * Picks a provider. {@code backend} is {@code auto}, {@code tensorrt} or {@code onnxruntime};
   * {@code device} is {@code auto}, {@code cpu} or {@code cuda}.
   */
  public static EngineProvider choose(String backend, String device) {
    boolean cpuOnly = device.equals("cpu");
    switch (backend) {
      case "onnxruntime" -> {
        if (device.equals("cuda")) {
          throw new BackendException(
              "device cuda needs the tensorrt backend; onnxruntime runs on the CPU here");
        }
        LOG.info("backend: onnxruntime-cpu (requested)");
        return CPU_PROVIDER;
      }
      case "tensorrt" -> {
        if (cpuOnly) {
          throw new BackendException("the tensorrt backend needs device cuda or auto, not cpu");
        }
        EngineProvider trt = findGpu("tensorrt");
        String why = whyUnavailable(trt).orElse(null);
        if (why != null) {
          throw new BackendException("tensorrt backend requested but unavailable: " + why);
        }
        LOG.info("backend: tensorrt (requested)");
        return trt;
      }
      case "auto" -> {
        if (cpuOnly) {
          LOG.info("backend: onnxruntime-cpu (device cpu requested)");
          return CPU_PROVIDER;
        }
        EngineProvider trt = findGpu("tensorrt");
        Optional<String> why = whyUnavailable(trt);
        if (why.isEmpty()) {
          LOG.info("backend: tensorrt (auto: CUDA device and TensorRT libraries found)");
          return trt;
        }
        if (device.equals("cuda")) {
          throw new BackendException("device cuda requested but unavailable: " + why.get());
        }
        LOG.info("backend: onnxruntime-cpu (auto: {})", why.get());
        return CPU_PROVIDER;
      }
      default -> throw new BackendException("unknown backend '" + backend + "'");
    }
  }

  private static EngineProvider findGpu(String name) {
    return GPU_PROVIDERS.stream().filter(p -> p.name().equals(name)).findFirst().orElse(null);
  }

  private static Optional<String> whyUnavailable(EngineProvider provider) {
    Optional<String> gpu = GpuProbe.tensorRtUnavailableReason();
    if (gpu.isPresent()) {
      return gpu;
    }
    if (provider == null) {
      return Optional.of("this build has no TensorRT engine provider");
    }
    return provider.unavailableReason();
  }
}
