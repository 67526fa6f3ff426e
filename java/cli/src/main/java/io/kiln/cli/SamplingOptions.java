package io.kiln.cli;

import io.kiln.execution.llm.SamplingParams;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** The sampling options of the commands that generate: how many tokens, and how to pick them. */
final class SamplingOptions {
  @Option(names = "--max-new-tokens", defaultValue = "32", description = "default: 32")
  int maxNewTokens;

  @Option(names = "--temperature", defaultValue = "0", description = "0 is greedy (default)")
  double temperature;

  @Option(names = "--top-k", defaultValue = "0", description = "0 disables (default)")
  int topK;

  @Option(names = "--top-p", defaultValue = "1", description = "1 disables (default)")
  double topP;

  @Option(names = "--repetition-penalty", defaultValue = "1", description = "1 disables (default)")
  double repetitionPenalty;

  @Option(names = "--seed", defaultValue = "0", description = "sampling seed (default: 0)")
  long seed;

  @Option(names = "--ignore-eos", description = "keep going past the end-of-sequence token")
  boolean ignoreEos;

  /** The sampling these options give; a value out of range is a usage error. */
  SamplingParams params(CommandLine.Model.CommandSpec spec) {
    OptionRanges.between(spec, "--max-new-tokens", maxNewTokens, 1, 1 << 24);
    OptionRanges.between(spec, "--temperature", temperature, 0.0, 100.0);
    OptionRanges.between(spec, "--top-k", topK, 0, 1 << 24);
    OptionRanges.between(spec, "--top-p", topP, Double.MIN_VALUE, 1.0);
    OptionRanges.between(spec, "--repetition-penalty", repetitionPenalty, Double.MIN_VALUE, 100.0);
    return SamplingParams.builder()
        .temperature(temperature)
        .topK(topK)
        .topP(topP)
        .repetitionPenalty(repetitionPenalty)
        .seed(seed)
        .maxNewTokens(maxNewTokens)
        .ignoreEos(ignoreEos)
        .build();
  }
}
