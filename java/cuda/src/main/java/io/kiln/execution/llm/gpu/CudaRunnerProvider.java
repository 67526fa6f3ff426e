package io.kiln.execution.llm.gpu;

import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.cuda.GpuProbe;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.RunnerProvider;
import java.nio.file.Path;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The CUDA Llama runner, for {@code LlmRunners.open} when kiln-cuda is on the classpath. */
public final class CudaRunnerProvider implements RunnerProvider {
  private static final Logger LOG = LoggerFactory.getLogger(CudaRunnerProvider.class);

  @Override
  public Device device() {
    return Device.CUDA;
  }

  @Override
  public Optional<String> unavailableReason() {
    if (!CudaModule.kernelsBuilt()) {
      return Optional.of("this build has no CUDA kernels (nvcc was not found when it was built)");
    }
    return GpuProbe.cudaUnavailableReason();
  }

  @Override
  public ModelRunner open(Path modelDir, RunnerOptions options) {
    if (options.quantization() != null) {
      // The 8-bit kernels are not written yet; never ignore the setting silently.
      throw new InvalidInputException(
          "8-bit weights on load run on the CPU runner for now; on cuda, open a checkpoint"
              + " written by kiln quantize-llm (its weights are uploaded dequantized)");
    }
    GpuLlamaRunner runner = GpuLlamaRunner.open(modelDir, GpuRunnerOptions.from(options));
    LOG.info("{}", runner.startupReport().line());
    return runner;
  }
}
