package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import io.kiln.BertReference;
import io.kiln.Tensor;
import io.kiln.model.TensorJson;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line's part of the bad-input suite: every mistake exits with its code and says what
 * is wrong in one line (a usage error adds one line of hint), and nothing is written to stdout.
 */
class CliBadInputTest {
  @TempDir static Path dir;
  private static BertReference ref;

  @BeforeAll
  static void load() throws Exception {
    ref = BertReference.load();
  }

  private record Case(String name, int exit, String fragment, Supplier<String[]> args) {}

  @TestFactory
  Stream<DynamicTest> everySubcommandHasHelp() {
    // Every command KilnCli registers, so that a new one is covered without being listed here.
    Set<String> commands = KilnCli.newCommandLine().getSubcommands().keySet();
    assertTrue(commands.size() >= 14, "only " + commands);
    return commands.stream()
        .map(
            command ->
                dynamicTest(
                    command + " --help",
                    () -> {
                      CliTest.Outcome o = CliTest.kiln(command, "--help");
                      assertEquals(0, o.exit(), o.err());
                      assertTrue(o.out().contains("Usage: kiln " + command), o.out());
                    }));
  }

  @TestFactory
  Stream<DynamicTest> everyMistakeIsOneLine() {
    return cases().stream()
        .map(
            c ->
                dynamicTest(
                    c.name(),
                    () -> {
                      CliTest.Outcome o = CliTest.kiln(c.args().get());
                      assertEquals(c.exit(), o.exit(), c.name() + ": " + o.err());
                      List<String> lines = o.err().lines().filter(l -> !l.isBlank()).toList();
                      int allowed = c.exit() == ExitCodes.USAGE ? 2 : 1;
                      assertTrue(
                          !lines.isEmpty() && lines.size() <= allowed,
                          c.name() + ": " + lines.size() + " lines: " + o.err());
                      assertTrue(lines.get(0).startsWith("kiln: "), o.err());
                      assertTrue(
                          lines.get(0).contains(c.fragment()),
                          c.name() + ": '" + lines.get(0) + "' lacks '" + c.fragment() + "'");
                      assertTrue(o.out().isBlank(), c.name() + " wrote to stdout: " + o.out());
                    }));
  }

  private static List<Case> cases() {
    String bert = ref.model().toString();
    List<Case> cases = new ArrayList<>();
    cases.add(new Case("unknown subcommand", 2, "Unmatched", () -> args("frobnicate")));
    cases.add(new Case("unknown option", 2, "--nonsense", () -> args("inspect", "--nonsense")));
    cases.add(new Case("missing model of run", 2, "MODEL", () -> args("run", "--inputs", "x")));
    cases.add(new Case("bench --seq 0", 2, "--seq", () -> args("bench", bert, "--seq", "0")));
    cases.add(
        new Case(
            "bench --seq past int", 2, "--seq", () -> args("bench", bert, "--seq", "99999999999")));
    cases.add(
        new Case(
            "bench --batch that overflows memory",
            2,
            "tokens",
            () -> args("bench", bert, "--batch", "60000", "--seq", "60000")));
    cases.add(
        new Case(
            "bench --threads 100000",
            2,
            "--threads",
            () -> args("bench", bert, "--threads", "100000")));
    cases.add(
        new Case(
            "bench --iterations 0",
            2,
            "--iterations",
            () -> args("bench", bert, "--iterations", "0")));
    cases.add(
        new Case(
            "bench --seconds -1", 2, "--seconds", () -> args("bench", bert, "--seconds", "-1")));
    cases.add(
        new Case(
            "bench --seq past the position table",
            2,
            "positions",
            () -> args("bench", bert, "--seq", "600", "--batch", "1", "--no-peer")));
    cases.add(
        new Case(
            "bench unknown mode", 4, "unknown mode", () -> args("bench", bert, "--mode", "x")));
    cases.add(
        new Case(
            "run --threads 0",
            2,
            "--threads",
            () -> args("run", bert, "--inputs", inputs("ok", 101, 0), "--threads", "0")));
    cases.add(
        new Case(
            "run --max-batch 0",
            2,
            "--max-batch",
            () -> args("run", bert, "--inputs", inputs("ok", 101, 0), "--max-batch", "0")));
    cases.add(
        new Case(
            "run with an id past the vocabulary",
            4,
            "rows 0 to",
            () -> args("run", bert, "--inputs", inputs("vocab", 1_000_000, 0))));
    cases.add(
        new Case(
            "run with a negative id",
            4,
            "has -5",
            () -> args("run", bert, "--inputs", inputs("negative", -5, 0))));
    cases.add(
        new Case(
            "run with a token type past its table",
            4,
            "token_type_ids",
            () -> args("run", bert, "--inputs", inputs("types", 101, 7))));
    cases.add(
        new Case(
            "run with an id past int64",
            4,
            "outside int64",
            () -> args("run", bert, "--inputs", text("big", "9223372036854775808"))));
    cases.add(
        new Case(
            "run with a missing model",
            3,
            "not found",
            () -> args("run", dir.resolve("absent.onnx").toString(), "--inputs", "x.json")));
    cases.add(
        new Case(
            "run with inputs that are not JSON",
            4,
            "not valid JSON",
            () -> args("run", bert, "--inputs", write("broken.json", "{\"input_ids\": ["))));
    cases.add(
        new Case(
            "run with an unknown precision",
            2,
            "fp64",
            () -> args("run", bert, "--inputs", "x.json", "--precision", "fp64")));
    cases.add(
        new Case(
            "build --opt-level 9",
            2,
            "--opt-level",
            () -> args("build", bert, "-o", dir.resolve("x.plan").toString(), "--opt-level", "9")));
    cases.add(
        new Case(
            "quantize --percentile 120",
            2,
            "--percentile",
            () ->
                args(
                    "quantize",
                    bert,
                    "--precision",
                    "int8",
                    "--percentile",
                    "120",
                    "-o",
                    dir.resolve("q.onnx").toString())));
    cases.add(
        new Case(
            "quantize to fp32",
            4,
            "fp16 or int8",
            () ->
                args(
                    "quantize",
                    bert,
                    "--precision",
                    "fp32",
                    "-o",
                    dir.resolve("q.onnx").toString())));
    cases.add(
        new Case(
            "make-random-model --shard-size-mb 0",
            2,
            "--shard-size-mb",
            () ->
                args(
                    "make-random-model",
                    "--shape",
                    "tiny",
                    "--shard-size-mb",
                    "0",
                    "-o",
                    dir.resolve("m").toString())));
    // LLM commands.
    cases.add(
        new Case(
            "generate --max-new-tokens past any context",
            2,
            "--max-new-tokens",
            () -> generate("--max-new-tokens", "2147483647")));
    cases.add(
        new Case(
            "generate --block-size 0", 2, "--block-size", () -> generate("--block-size", "0")));
    cases.add(
        new Case(
            "generate --threads 100000", 2, "--threads", () -> generate("--threads", "100000")));
    cases.add(new Case("generate --top-p 0", 2, "--top-p", () -> generate("--top-p", "0")));
    cases.add(
        new Case(
            "generate --quantization int4",
            2,
            "--quantization",
            () -> generate("--quantization", "int4")));
    cases.add(
        new Case(
            "generate --temperature -1",
            2,
            "--temperature",
            () -> generate("--temperature", "-1")));
    cases.add(
        new Case(
            "generate with a prompt id past the vocabulary",
            4,
            "outside the vocabulary",
            () -> args("generate", "--model", tiny().toString(), "--prompt-ids", "1,99999999")));
    cases.add(
        new Case(
            "generate on weights that hold NaN",
            5,
            "non-finite",
            () -> args("generate", "--model", nanModel().toString(), "--prompt-ids", "1,2,3")));
    cases.add(
        new Case(
            "bench-llm --concurrency 0",
            2,
            "--concurrency",
            () -> args("bench-llm", "--model", tiny().toString(), "--concurrency", "0")));
    speculativeCases(cases);
    cases.add(
        new Case(
            "make-random-model of a 10^12 vocabulary",
            3,
            "vocab_size",
            () ->
                args(
                    "make-random-model",
                    "--shape",
                    bigConfig(),
                    "-o",
                    dir.resolve("big").toString())));
    cases.add(
        new Case(
            "quantize-llm to an unknown format",
            2,
            "--precision",
            () ->
                args(
                    "quantize-llm",
                    "--model",
                    tiny().toString(),
                    "--precision",
                    "int4",
                    "-o",
                    dir.resolve("q4").toString())));
    cases.add(
        new Case(
            "quantize-llm over an existing directory",
            4,
            "exists already",
            () ->
                args(
                    "quantize-llm",
                    "--model",
                    tiny().toString(),
                    "--precision",
                    "int8",
                    "-o",
                    tiny().toString())));
    return cases;
  }

  /** Speculative options: the same usage errors from generate, bench-llm and serve. */
  private static void speculativeCases(List<Case> cases) {
    Map<String, String[]> fragmentToOptions = new LinkedHashMap<>();
    fragmentToOptions.put("needs --draft-model", new String[] {"--spec-method", "draft"});
    fragmentToOptions.put("must be draft or ngram", new String[] {"--spec-method", "beam"});
    fragmentToOptions.put(
        "--draft-model needs --spec-method draft",
        new String[] {"--spec-method", "ngram", "--draft-model", "."});
    fragmentToOptions.put(
        "--spec-tokens must be between 1 and 8",
        new String[] {"--spec-method", "ngram", "--spec-tokens", "9"});
    fragmentToOptions.put(
        "--spec-ngram-max must be between 3",
        new String[] {"--spec-method", "ngram", "--spec-ngram-min", "3", "--spec-ngram-max", "2"});
    fragmentToOptions.put(
        "need --spec-method ngram",
        new String[] {"--spec-method", "draft", "--draft-model", ".", "--spec-ngram-min", "2"});
    fragmentToOptions.put("--spec-tokens needs --spec-method", new String[] {"--spec-tokens", "2"});
    fragmentToOptions.forEach(
        (fragment, options) -> {
          for (String command : new String[] {"generate", "bench-llm", "serve"}) {
            cases.add(
                new Case(
                    command + " " + String.join(" ", options),
                    ExitCodes.USAGE,
                    fragment,
                    () -> withModel(command, options)));
          }
        });
    cases.add(
        new Case(
            "generate with a draft of another vocabulary",
            ExitCodes.MODEL,
            "vocabulary",
            () ->
                generate("--spec-method", "draft", "--draft-model", otherVocabulary().toString())));
  }

  /** {@code command} on the tiny model with {@code options} (and a prompt for generate). */
  private static String[] withModel(String command, String[] options) {
    List<String> all = new ArrayList<>(List.of(command, "--model", tiny().toString()));
    if (command.equals("generate")) {
      all.addAll(List.of("--prompt-ids", "1,2"));
    }
    all.addAll(List.of(options));
    return all.toArray(String[]::new);
  }

  private static Path otherVocabularyModel;

  /** The tiny shape with a vocabulary of 300 instead of 256: no draft for the tiny model. */
  private static synchronized Path otherVocabulary() {
    if (otherVocabularyModel == null) {
      otherVocabularyModel = dir.resolve("tiny-vocab-300");
      com.fasterxml.jackson.databind.node.ObjectNode shape =
          io.kiln.model.llama.RandomLlamaModel.shape("tiny");
      shape.put("vocab_size", 300);
      io.kiln.model.llama.RandomLlamaModel.write(
          shape, 6, io.kiln.DType.F32, otherVocabularyModel, 1L << 30, fraction -> {});
    }
    return otherVocabularyModel;
  }

  private static Path tinyModel;

  /** A tiny random Llama, written once. */
  private static synchronized Path tiny() {
    if (tinyModel == null) {
      tinyModel = dir.resolve("tiny");
      io.kiln.model.llama.RandomLlamaModel.write(
          io.kiln.model.llama.RandomLlamaModel.shape("tiny"),
          5,
          io.kiln.DType.F32,
          tinyModel,
          1L << 30,
          fraction -> {});
    }
    return tinyModel;
  }

  private static String[] generate(String... extra) {
    List<String> all =
        new ArrayList<>(List.of("generate", "--model", tiny().toString(), "--prompt-ids", "1,2"));
    all.addAll(List.of(extra));
    return all.toArray(String[]::new);
  }

  /** The tiny model with every weight byte pattern turned into NaN. */
  private static Path nanModel() {
    try {
      Path copy = dir.resolve("nan-" + System.nanoTime());
      Files.createDirectories(copy);
      try (var files = Files.list(tiny())) {
        for (Path f : files.toList()) {
          Files.copy(f, copy.resolve(f.getFileName()));
        }
      }
      Path weights = copy.resolve("model.safetensors");
      byte[] bytes = Files.readAllBytes(weights);
      long header =
          java.nio.ByteBuffer.wrap(bytes, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
      java.nio.ByteBuffer data =
          java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      for (int i = (int) (8 + header); i + 4 <= bytes.length; i += 4) {
        data.putFloat(i, Float.NaN);
      }
      Files.write(weights, bytes);
      return copy;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** A config.json like the tiny model's but with a vocabulary of 10^12. */
  private static String bigConfig() {
    com.fasterxml.jackson.databind.node.ObjectNode c =
        io.kiln.model.llama.RandomLlamaModel.shape("tiny");
    c.put("vocab_size", 1_000_000_000_000L);
    return write("big-config.json", c.toString());
  }

  private static String[] args(String... args) {
    return args;
  }

  /** A BERT input file of 8 tokens, each {@code id}, all of token type {@code type}. */
  private static String inputs(String name, long id, long type) {
    long[] ids = new long[8];
    long[] mask = new long[8];
    long[] types = new long[8];
    java.util.Arrays.fill(ids, id);
    java.util.Arrays.fill(mask, 1);
    java.util.Arrays.fill(types, type);
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("input_ids", Tensor.of(ids, 1, 8));
    in.put("attention_mask", Tensor.of(mask, 1, 8));
    in.put("token_type_ids", Tensor.of(types, 1, 8));
    try {
      Path file = dir.resolve(name + ".json");
      TensorJson.write(in, file);
      return file.toString();
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  /** A BERT input file whose first id is the literal {@code id}. */
  private static String text(String name, String id) {
    return write(
        name + ".json",
        "{\"input_ids\":{\"dtype\":\"int64\",\"shape\":[1,1],\"data\":["
            + id
            + "]},\"attention_mask\":{\"dtype\":\"int64\",\"shape\":[1,1],\"data\":[1]},"
            + "\"token_type_ids\":{\"dtype\":\"int64\",\"shape\":[1,1],\"data\":[0]}}");
  }

  private static String write(String name, String content) {
    try {
      Path file = dir.resolve(name);
      Files.writeString(file, content);
      return file.toString();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
