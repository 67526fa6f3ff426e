package io.kiln.badinput;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.ModelException;
import io.kiln.execution.llm.CpuLlamaRunner;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.NonFiniteLogitsException;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaWeights;
import io.kiln.model.llama.RandomLlamaModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * The LLM part of the bad-input suite: broken configs and weights, and bad requests, each get a
 * typed one-line error; a model whose weights hold NaN never produces tokens.
 */
class LlmBadInputTest {
  @TempDir static Path dir;
  private static Path tiny;

  @BeforeAll
  static void writeTinyModel() {
    tiny = dir.resolve("tiny");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"), 3, DType.F32, tiny, 1L << 30, fraction -> {});
  }

  @TestFactory
  Stream<DynamicTest> everyCaseIsTypedAndOneLine() {
    return BadInputCase.tests(cases());
  }

  private static List<BadInputCase> cases() {
    List<BadInputCase> cases = new ArrayList<>();
    cases.add(
        config("zero heads", "must be a positive integer", c -> c.put("num_attention_heads", 0)));
    cases.add(
        config(
            "negative layers", "must be a positive integer", c -> c.put("num_hidden_layers", -2)));
    cases.add(
        config("zero hidden size", "must be a positive integer", c -> c.put("hidden_size", 0)));
    cases.add(
        config(
            "vocabulary of 10^12",
            "must be a positive integer",
            c -> c.put("vocab_size", 1_000_000_000_000L)));
    cases.add(
        config(
            "text for a size",
            "must be a positive integer",
            c -> c.put("intermediate_size", "big")));
    cases.add(config("negative rms_norm_eps", "rms_norm_eps", c -> c.put("rms_norm_eps", -1e-5)));
    cases.add(config("zero rms_norm_eps", "rms_norm_eps", c -> c.put("rms_norm_eps", 0.0)));
    cases.add(config("negative rope_theta", "rope_theta", c -> c.put("rope_theta", -10000.0)));
    cases.add(
        config(
            "heads that do not divide",
            "not a multiple",
            c -> {
              c.put("num_attention_heads", 6);
              c.put("num_key_value_heads", 4);
            }));
    cases.add(config("odd head_dim", "even", c -> c.put("head_dim", 7)));
    cases.add(
        config(
            "widths that overflow an int",
            "overflow",
            c -> {
              c.put("num_attention_heads", 65536);
              c.put("num_key_value_heads", 65536);
              c.put("head_dim", 65536);
            }));
    cases.add(
        config(
            "no max_position_embeddings",
            "max_position_embeddings",
            c -> c.remove("max_position_embeddings")));
    cases.add(
        config(
            "unknown architecture",
            "GPTNeoXForCausalLM",
            c -> c.putArray("architectures").add("GPTNeoXForCausalLM")));
    cases.add(
        config(
            "unknown model_type",
            "gpt_neox",
            c -> {
              c.remove("architectures");
              c.put("model_type", "gpt_neox");
            }));
    cases.add(
        config(
            "architecture against model_type",
            "make the two agree",
            c -> c.put("model_type", "qwen2")));
    cases.add(config("gelu activation", "hidden_act", c -> c.put("hidden_act", "gelu")));
    cases.add(
        config(
            "unknown rope scaling",
            "rope scaling",
            c -> c.putObject("rope_scaling").put("rope_type", "yarn").put("factor", 4.0)));
    cases.add(
        new BadInputCase(
            "config that is not JSON",
            ModelException.class,
            "cannot parse",
            () -> LlamaConfig.parse("{\"hidden_size\": ")));
    cases.add(
        new BadInputCase(
            "no config.json",
            ModelException.class,
            "config.json",
            () -> LlamaConfig.load(dir.resolve("nowhere"))));
    cases.add(
        new BadInputCase(
            "weights that lack a tensor",
            ModelException.class,
            "lm_head.weight",
            () -> {
              Path copy = copyOfTiny("untied");
              ObjectNode c =
                  (ObjectNode) new ObjectMapper().readTree(copy.resolve("config.json").toFile());
              c.put("tie_word_embeddings", false);
              new ObjectMapper().writeValue(copy.resolve("config.json").toFile(), c);
              LlamaWeights.load(copy);
            }));
    cases.add(
        new BadInputCase(
            "a model larger than the free disk",
            InvalidInputException.class,
            "--force",
            () -> {
              ObjectNode huge = RandomLlamaModel.shape("tiny");
              huge.put("hidden_size", 65536).put("intermediate_size", 1 << 20);
              huge.put("num_hidden_layers", 4096).put("head_dim", 64);
              huge.put("num_attention_heads", 1024).put("num_key_value_heads", 1024);
              RandomLlamaModel.write(huge, 1, DType.F32, dir.resolve("huge"), 1L << 30, f -> {});
            }));
    // Requests.
    cases.add(
        request(
            "empty prompt", InvalidInputException.class, "", new int[0], SamplingParams.greedy(2)));
    cases.add(
        request(
            "id past the vocabulary",
            InvalidInputException.class,
            "",
            new int[] {1, 1 << 20},
            SamplingParams.greedy(2)));
    cases.add(
        request(
            "negative id",
            InvalidInputException.class,
            "",
            new int[] {1, -4},
            SamplingParams.greedy(2)));
    cases.add(
        request(
            "no new tokens",
            InvalidInputException.class,
            "",
            new int[] {1, 2},
            SamplingParams.builder().maxNewTokens(0).build()));
    cases.add(
        request(
            "negative temperature",
            InvalidInputException.class,
            "",
            new int[] {1, 2},
            SamplingParams.builder().temperature(-1).maxNewTokens(2).build()));
    cases.add(
        request(
            "top_p above 1",
            InvalidInputException.class,
            "",
            new int[] {1, 2},
            SamplingParams.builder().topP(1.5).maxNewTokens(2).build()));
    cases.add(
        request(
            "a prompt longer than the context",
            InvalidInputException.class,
            "",
            new int[5000],
            SamplingParams.greedy(2)));
    cases.add(
        new BadInputCase(
            "block size 0",
            InvalidInputException.class,
            "",
            () -> RunnerOptions.defaults().withBlockSize(0)));
    cases.add(
        new BadInputCase(
            "threads past any machine",
            InvalidInputException.class,
            "",
            () -> RunnerOptions.defaults().withThreads(100_000)));
    return cases;
  }

  @Test
  void aFailedWriteLeavesNoPartialModel() throws Exception {
    Path out = dir.resolve("half-written");
    RuntimeException stop = new RuntimeException("stopped halfway");
    RuntimeException thrown =
        assertThrows(
            RuntimeException.class,
            () ->
                RandomLlamaModel.write(
                    RandomLlamaModel.shape("tiny"),
                    1,
                    DType.F32,
                    out,
                    1L << 30,
                    fraction -> {
                      if (fraction > 0.5) {
                        throw stop;
                      }
                    }));
    assertTrue(thrown == stop, thrown.toString());
    assertFalse(Files.exists(out), "a partial model was left at " + out);
    try (var left = Files.list(dir)) {
      assertTrue(
          left.noneMatch(p -> p.getFileName().toString().contains("half-written")),
          "a staging folder was left behind");
    }
    assertFalse(Files.exists(dir.resolve("huge")), "the refused model left a directory");
  }

  @Test
  void nanWeightsNeverBecomeTokens() {
    LlamaWeights weights = LlamaWeights.load(tiny);
    java.util.Arrays.fill(weights.layers[0].wq, Float.NaN);
    try (ModelRunner runner = new CpuLlamaRunner(weights, KvPoolSpec.ofUsableBlocks(16, 16), 1);
        LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
      KilnException e =
          assertThrows(
              KilnException.class,
              () -> engine.generate(new int[] {1, 2, 3}, SamplingParams.greedy(4)));
      assertInstanceOf(NonFiniteLogitsException.class, e, e.toString());
      assertFalse(e.getMessage().contains("\n"));
    }
  }

  /** The tiny model's config.json with one change, parsed. */
  private static BadInputCase config(String name, String fragment, Consumer<ObjectNode> change) {
    return new BadInputCase(
        name,
        ModelException.class,
        fragment,
        () -> {
          ObjectNode c =
              (ObjectNode) new ObjectMapper().readTree(tiny.resolve("config.json").toFile());
          change.accept(c);
          LlamaConfig.parse(c, "config.json");
        });
  }

  private static BadInputCase request(
      String name,
      Class<? extends KilnException> type,
      String fragment,
      int[] prompt,
      SamplingParams params) {
    return new BadInputCase(
        name,
        type,
        fragment,
        () -> {
          try (ModelRunner runner =
                  LlmRunners.open(tiny, Device.CPU, RunnerOptions.defaults().withKvBlocks(32));
              LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults())) {
            engine.generate(prompt, params);
          }
        });
  }

  private static Path copyOfTiny(String name) throws Exception {
    Path copy = dir.resolve(name);
    Files.createDirectories(copy);
    try (var files = Files.list(tiny)) {
      for (Path f : files.toList()) {
        Files.copy(f, copy.resolve(f.getFileName()));
      }
    }
    return copy;
  }
}
