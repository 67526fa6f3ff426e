package io.kiln.execution.llm;

import io.kiln.BackendException;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.llama.LlamaConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Opens a model runner for a Hugging Face model directory on a device, choosing the provider. */
public final class LlmRunners {
  private static final Logger LOG = LoggerFactory.getLogger(LlmRunners.class);

  private static List<RunnerProvider> providers;

  private LlmRunners() {}

  /** Every provider on the classpath, loaded once. */
  public static synchronized List<RunnerProvider> providers() {
    if (providers == null) {
      providers =
          ServiceLoader.load(RunnerProvider.class, LlmRunners.class.getClassLoader()).stream()
              .map(ServiceLoader.Provider::get)
              .toList();
    }
    return providers;
  }

  /**
   * Checks the directory and its config.json, then opens a runner on {@code device}: {@link
   * Device#AUTO} takes CUDA when a CUDA provider is available, else the CPU.
   *
   * @throws ModelException when the directory or its config.json is missing or unsupported
   * @throws BackendException when the device asked for cannot run here
   * @throws InvalidInputException when the device or options are missing
   */
  public static ModelRunner open(Path modelDir, Device device, RunnerOptions options) {
    if (modelDir == null || device == null || options == null) {
      throw new InvalidInputException("model directory, device and runner options are required");
    }
    if (!Files.isDirectory(modelDir)) {
      throw new ModelException("model directory not found: " + modelDir);
    }
    LlamaConfig.load(modelDir);
    return choose(device, providers()).open(modelDir, options);
  }

  /** The provider for {@code device} among {@code candidates}; the choice is logged. */
  static RunnerProvider choose(Device device, List<RunnerProvider> candidates) {
    switch (device) {
      case CUDA -> {
        RunnerProvider cuda = find(Device.CUDA, candidates);
        Optional<String> why = whyUnavailable(cuda);
        if (why.isPresent()) {
          throw new BackendException("device cuda requested but unavailable: " + why.get());
        }
        LOG.info("LLM runner: cuda (requested)");
        return cuda;
      }
      case CPU -> {
        LOG.info("LLM runner: cpu (requested)");
        return cpu(candidates);
      }
      case AUTO -> {
        RunnerProvider cuda = find(Device.CUDA, candidates);
        Optional<String> why = whyUnavailable(cuda);
        if (why.isEmpty()) {
          LOG.info("LLM runner: cuda (auto: a CUDA runner is available)");
          return cuda;
        }
        LOG.info("LLM runner: cpu (auto: {})", why.get());
        return cpu(candidates);
      }
      default -> throw new BackendException("unknown device " + device);
    }
  }

  private static Optional<String> whyUnavailable(RunnerProvider cuda) {
    if (cuda == null) {
      return Optional.of("kiln-cuda, which holds the CUDA LLM runner, is not on the classpath");
    }
    return cuda.unavailableReason();
  }

  private static RunnerProvider cpu(List<RunnerProvider> candidates) {
    RunnerProvider cpu = find(Device.CPU, candidates);
    if (cpu == null) {
      throw new BackendException("no CPU LLM runner provider on the classpath");
    }
    return cpu;
  }

  private static RunnerProvider find(Device device, List<RunnerProvider> candidates) {
    return candidates.stream().filter(p -> p.device() == device).findFirst().orElse(null);
  }
}
