package io.kiln.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RequestMetrics;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.execution.llm.TokenEvent;
import io.kiln.execution.llm.TokenStream;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.util.HfTokenizers;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code kiln generate}: continue one prompt with a Llama-family model (CPU or CUDA). */
@Command(
    name = "generate",
    description = {
      "Generate tokens for one prompt, streaming them as they come.",
      "Temperature 0 (the default) is greedy decoding."
    })
final class GenerateCommand implements Callable<Integer> {
  @Mixin LlmModelOptions modelOptions;

  @Mixin SpeculativeOptions speculativeOptions;

  static final class PromptInput {
    @Option(
        names = "--prompt",
        paramLabel = "TEXT",
        description = "text, tokenized with DIR/tokenizer.json")
    String text;

    @Option(
        names = "--prompt-ids",
        split = ",",
        paramLabel = "ID[,ID...]",
        description = "token ids")
    List<Integer> ids;
  }

  @ArgGroup(multiplicity = "1")
  PromptInput prompt;

  @Mixin SamplingOptions sampling;

  @Option(names = "--json", description = "print one JSON object with ids, text and metrics")
  boolean json;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    SamplingParams params = sampling.params(spec);
    modelOptions.checkRanges(spec);
    SpeculativeConfig speculative = speculativeOptions.config(spec);
    PrintWriter out = spec.commandLine().getOut();
    LlamaConfig config = modelOptions.config();
    params.validate(config.vocabSize());
    HuggingFaceTokenizer tokenizer = prompt.text != null ? loadTokenizer(modelOptions.model) : null;
    try {
      int[] ids = tokenizer != null ? encode(tokenizer, prompt.text) : toArray(prompt.ids);
      if (ids.length > config.maxPositions()) {
        throw new InvalidInputException(
            "the prompt has "
                + ids.length
                + " tokens, longer than the model context of "
                + config.maxPositions());
      }
      int tokens = Math.min(ids.length + sampling.maxNewTokens, config.maxPositions());
      SchedulerConfig scheduler = SchedulerConfig.defaults();
      RunnerOptions runnerOptions =
          modelOptions.runnerOptions(
              modelOptions.blocksFor(tokens),
              false,
              scheduler.maxNumSeqs(),
              scheduler.maxNumBatchedTokens());
      // Closed in reverse: the engine first, then the draft and the target runner under it.
      try (ModelRunner runner = modelOptions.openRunner(runnerOptions.forTarget(speculative));
          ModelRunner draft =
              speculativeOptions.openDraft(speculative, modelOptions, runnerOptions);
          LlmEngine engine = new LlmEngine(runner, scheduler, speculative, draft)) {
        GenerationResult result = run(engine, ids, params, tokenizer, out);
        if (json) {
          out.println(toJson(result, tokenizer, speculative != null));
        } else {
          RequestMetrics m = result.metrics();
          spec.commandLine()
              .getErr()
              .printf(
                  "%d prompt + %d new tokens (%s), TTFT %.1f ms, %.1f tokens/s%s%n",
                  m.promptTokens(),
                  m.generatedTokens(),
                  result.finishReason().name().toLowerCase(java.util.Locale.ROOT),
                  m.ttftMillis(),
                  tokensPerSecond(m),
                  speculative == null
                      ? ""
                      : String.format(
                          java.util.Locale.ROOT,
                          ", %d of %d proposed tokens accepted",
                          m.speculativeAccepted(),
                          m.speculativeProposed()));
        }
      }
    } finally {
      if (tokenizer != null) {
        tokenizer.close();
      }
    }
    out.flush();
    return ExitCodes.OK;
  }

  /** Streams the tokens to {@code out} unless JSON was asked for. */
  private GenerationResult run(
      LlmEngine engine,
      int[] ids,
      SamplingParams params,
      HuggingFaceTokenizer tokenizer,
      PrintWriter out) {
    try (TokenStream stream = engine.stream(ids, params)) {
      List<Integer> generated = new ArrayList<>();
      String printed = "";
      while (stream.hasNext()) {
        TokenEvent event = stream.next();
        generated.add(event.tokenId());
        if (json) {
          continue;
        }
        if (tokenizer == null) {
          out.print((generated.size() > 1 ? "," : "") + event.tokenId());
        } else {
          // Decode the whole tail each time: tokens do not map to whole characters.
          String text = tokenizer.decode(toLongs(generated));
          if (text.startsWith(printed)) {
            out.print(text.substring(printed.length()));
            printed = text;
          }
        }
        out.flush();
      }
      if (!json) {
        out.println();
      }
      return stream.handle().result().join();
    }
  }

  private static double tokensPerSecond(RequestMetrics m) {
    return m.generatedTokens() / (m.totalMillis() / 1e3);
  }

  private static String toJson(
      GenerationResult r, HuggingFaceTokenizer tokenizer, boolean speculative) throws IOException {
    RequestMetrics m = r.metrics();
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("prompt_ids", r.promptIds());
    o.put("new_token_ids", r.newTokenIds());
    if (tokenizer != null) {
      o.put("text", tokenizer.decode(toLongs(r.newTokenIds())));
    }
    o.put("finish_reason", r.finishReason().name().toLowerCase(java.util.Locale.ROOT));
    o.put("prompt_tokens", m.promptTokens());
    o.put("generated_tokens", m.generatedTokens());
    o.put("ttft_ms", m.ttftMillis());
    o.put("mean_itl_ms", m.generatedTokens() > 1 ? m.meanInterTokenMillis() : null);
    o.put("total_ms", m.totalMillis());
    o.put("tokens_per_second", tokensPerSecond(m));
    o.put("preemptions", m.preemptions());
    if (speculative) {
      Map<String, Object> s = new LinkedHashMap<>();
      s.put("proposed", m.speculativeProposed());
      s.put("accepted", m.speculativeAccepted());
      // Nothing proposed has no rate: null rather than JSON's missing NaN.
      s.put("acceptance_rate", m.speculativeProposed() == 0 ? null : m.acceptanceRate());
      o.put("speculative", s);
    }
    return new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(o);
  }

  static HuggingFaceTokenizer loadTokenizer(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      throw new InvalidInputException(
          "--prompt needs a tokenizer, but "
              + file
              + " does not exist; pass token ids with --prompt-ids instead");
    }
    try {
      return HfTokenizers.open(file, Map.of("truncation", "false", "padding", "false"));
    } catch (IOException | RuntimeException e) {
      throw new ModelException("cannot load tokenizer " + file + ": " + e.getMessage(), e);
    }
  }

  private static int[] encode(HuggingFaceTokenizer tokenizer, String text) {
    long[] ids = tokenizer.encode(text).getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
    }
    return out;
  }

  private static int[] toArray(List<Integer> ids) {
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  private static long[] toLongs(List<Integer> ids) {
    return ids.stream().mapToLong(Integer::longValue).toArray();
  }

  private static long[] toLongs(int[] ids) {
    long[] out = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = ids[i];
    }
    return out;
  }
}
