package io.kiln.cli;

import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SpeculativeConfig;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/**
 * Speculative decoding options of generate, bench-llm and serve: where proposed tokens come from,
 * which the model then verifies in one step. Off unless {@code --spec-method} is given.
 */
final class SpeculativeOptions {
  /** Longer n-grams than this find no earlier match in any real text; a larger value is a typo. */
  static final int MAX_NGRAM = 64;

  @Option(
      names = "--spec-method",
      paramLabel = "draft|ngram",
      description =
          "speculative decoding: tokens proposed by a smaller model (draft, needs --draft-model)"
              + " or by the latest earlier match of the last tokens in the prompt and output"
              + " (ngram), verified in one step of the model (default: off)")
  String method;

  @Option(
      names = "--spec-tokens",
      paramLabel = "K",
      description =
          "tokens proposed per step, 1 to " + SpeculativeConfig.MAX_TOKENS + " (default: 4)")
  Integer tokens;

  @Option(
      names = "--draft-model",
      paramLabel = "DIR",
      description =
          "the draft model of --spec-method draft, with the vocabulary of --model; opened with the"
              + " same device and runner options, --quantization included")
  Path draftModel;

  @Option(
      names = "--spec-ngram-min",
      paramLabel = "N",
      description = "ngram: shortest suffix looked up (default: 1)")
  Integer ngramMin;

  @Option(
      names = "--spec-ngram-max",
      paramLabel = "N",
      description = "ngram: longest suffix looked up, tried first (default: 4)")
  Integer ngramMax;

  static final int DEFAULT_TOKENS = 4;

  private static final String NGRAM_ONLY =
      "--spec-ngram-min and --spec-ngram-max need --spec-method ngram";

  /**
   * The settings these flags give, or null without {@code --spec-method}; a value out of range or
   * an option that does not go with the method is a usage error.
   */
  SpeculativeConfig config(CommandSpec spec) {
    if (method == null) {
      if (draftModel != null) {
        throw OptionRanges.usage(spec, "--draft-model needs --spec-method draft");
      }
      if (ngramMin != null || ngramMax != null) {
        throw OptionRanges.usage(spec, NGRAM_ONLY);
      }
      if (tokens != null) {
        throw OptionRanges.usage(spec, "--spec-tokens needs --spec-method");
      }
      return null;
    }
    SpeculativeConfig.Method parsed = parseMethod(spec);
    int k =
        OptionRanges.between(
            spec,
            "--spec-tokens",
            tokens != null ? tokens : DEFAULT_TOKENS,
            1,
            SpeculativeConfig.MAX_TOKENS);
    if (parsed == SpeculativeConfig.Method.DRAFT) {
      if (draftModel == null) {
        throw OptionRanges.usage(spec, "--spec-method draft needs --draft-model DIR");
      }
      if (ngramMin != null || ngramMax != null) {
        throw OptionRanges.usage(spec, NGRAM_ONLY);
      }
      return SpeculativeConfig.draft(k);
    }
    if (draftModel != null) {
      throw OptionRanges.usage(spec, "--draft-model needs --spec-method draft");
    }
    int min = ngramMin != null ? ngramMin : SpeculativeConfig.DEFAULT_NGRAM_MIN;
    int max = ngramMax != null ? ngramMax : Math.max(min, SpeculativeConfig.DEFAULT_NGRAM_MAX);
    OptionRanges.between(spec, "--spec-ngram-min", min, 1, MAX_NGRAM);
    OptionRanges.between(spec, "--spec-ngram-max", max, min, MAX_NGRAM);
    return SpeculativeConfig.ngram(k).withNgram(min, max);
  }

  /**
   * The draft model's runner for {@code config}, opened as {@code target} opens the model, with the
   * same runner {@code options}; null without a draft. The caller closes it after the engine.
   */
  ModelRunner openDraft(SpeculativeConfig config, LlmModelOptions target, RunnerOptions options) {
    if (config == null || config.method() != SpeculativeConfig.Method.DRAFT) {
      return null;
    }
    return target.openRunner(draftModel, options.forDraft());
  }

  /** A description for reports: the method and its settings, or "off". */
  static String describe(SpeculativeConfig config, Path draftModel) {
    if (config == null) {
      return "off";
    }
    return switch (config.method()) {
      case DRAFT -> "draft model " + draftModel + ", K=" + config.numTokens();
      case NGRAM ->
          "ngram " + config.ngramMin() + ".." + config.ngramMax() + ", K=" + config.numTokens();
    };
  }

  private SpeculativeConfig.Method parseMethod(CommandSpec spec) {
    return switch (method.toLowerCase(Locale.ROOT)) {
      case "draft" -> SpeculativeConfig.Method.DRAFT;
      case "ngram" -> SpeculativeConfig.Method.NGRAM;
      default ->
          throw OptionRanges.usage(
              spec, "--spec-method must be draft or ngram, got '" + method + "'");
    };
  }
}
