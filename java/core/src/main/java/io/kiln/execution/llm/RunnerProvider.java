package io.kiln.execution.llm;

import io.kiln.Device;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Opens LLM model runners on one device, when its native libraries are present. Found through
 * {@link java.util.ServiceLoader}: kiln-core registers the CPU runner; a CUDA runner comes from
 * kiln-cuda. {@link LlmRunners#open} picks among them.
 */
public interface RunnerProvider {
  /** Where its runners compute: {@link Device#CPU} or {@link Device#CUDA}. */
  Device device();

  /** Why this provider cannot run here, or empty when it can. Must not throw. */
  Optional<String> unavailableReason();

  /**
   * Opens a runner for a Hugging Face model directory whose config.json {@link LlmRunners#open} has
   * already checked. Its pool holds {@code options.kvBlocks()} usable blocks plus the null block it
   * adds itself.
   */
  ModelRunner open(Path modelDir, RunnerOptions options);
}
