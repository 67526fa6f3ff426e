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
  private static final String[] COMMANDS = {
    "inspect",
    "build",
    "run",
    "embed",
    "bench",
    "generate",
    "bench-llm",
    "make-random-model",
    "export-llm",
    "quantize"
  };

  @TempDir static Path dir;
  private static BertReference ref;

  @BeforeAll
  static void load() throws Exception {
    ref = BertReference.load();
  }

  private record Case(String name, int exit, String fragment, Supplier<String[]> args) {}

  @TestFactory
  Stream<DynamicTest> everySubcommandHasHelp() {
    return Stream.of(COMMANDS)
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
    return cases;
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
