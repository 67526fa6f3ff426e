package io.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.embedding.EmbeddingOptions;
import io.kiln.embedding.TextEmbedder;
import io.kiln.util.ProgressBar;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code kiln embed [--model DIR|FILE] (TEXT... | --input FILE|-)}: one sentence embedding per
 * text, pooled as the model says, as JSON arrays on stdout or JSONL in a file.
 */
@Command(
    name = "embed",
    description = {
      "Print sentence embeddings, one JSON array per line (or JSONL with --output).",
      "Pooling and normalization come from the model's sentence-transformers files"
          + " (modules.json, 1_Pooling/config.json); --pooling and --normalize override them."
    })
final class EmbedCommand implements Callable<Integer> {
  /** Texts embedded per step: large enough to batch by length, small enough to show progress. */
  static final int TEXTS_PER_STEP = 1024;

  private static final ObjectMapper JSON = new ObjectMapper();

  @Parameters(arity = "0..*", paramLabel = "TEXT", description = "texts to embed")
  List<String> texts = new ArrayList<>();

  @Mixin EmbeddingModelOptions embeddingModel;

  @Option(
      names = "--input",
      paramLabel = "FILE",
      description = "read texts from FILE (- for stdin): one per line, or JSONL with --field")
  String input;

  @Option(
      names = "--field",
      paramLabel = "NAME",
      description = "with --input: each line is a JSON object and NAME holds its text")
  String field;

  @Option(
      names = "--output",
      paramLabel = "FILE.jsonl",
      description = "write {\"index\": i, \"embedding\": [...]} lines here instead of stdout")
  Path output;

  @Mixin SessionOptions options;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    EmbeddingOptions embedding = embeddingModel.embeddingOptions(spec, options);
    if (texts.isEmpty() == (input == null)) {
      throw OptionRanges.usage(spec, "give TEXT arguments or --input FILE|-, not both or neither");
    }
    if (field != null && input == null) {
      throw OptionRanges.usage(spec, "--field needs --input");
    }
    try (TextEmbedder embedder = embeddingModel.open(spec, options, embedding)) {
      List<String> all = input == null ? texts : readTexts();
      if (all.isEmpty()) {
        throw new InvalidInputException("no texts in " + input);
      }
      write(embedder, all);
      if (embedder.truncatedInputs() > 0) {
        PrintWriter err = spec.commandLine().getErr();
        err.println(
            "kiln: "
                + embedder.truncatedInputs()
                + " of "
                + all.size()
                + " texts were longer than the model's maximum and were truncated");
        err.flush();
      }
    }
    return ExitCodes.OK;
  }

  private List<String> readTexts() throws IOException {
    List<String> lines = new ArrayList<>();
    try (BufferedReader in =
        input.equals("-")
            ? new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))
            : Files.newBufferedReader(inputPath(), StandardCharsets.UTF_8)) {
      String line;
      while ((line = in.readLine()) != null) {
        lines.add(field == null ? line : fieldOf(line, lines.size() + 1));
      }
    }
    return lines;
  }

  private Path inputPath() {
    Path p = Path.of(input);
    if (!Files.isRegularFile(p)) {
      throw new InvalidInputException("input file not found: " + input);
    }
    return p;
  }

  private String fieldOf(String line, int lineNumber) {
    JsonNode node;
    try {
      node = JSON.readTree(line);
    } catch (IOException e) {
      throw new InvalidInputException(
          input + " line " + lineNumber + ": not JSON: " + io.kiln.model.JsonProblems.oneLine(e));
    }
    JsonNode text = node == null ? null : node.get(field);
    if (text == null || !text.isTextual()) {
      throw new InvalidInputException(
          input + " line " + lineNumber + ": no text field '" + field + "'");
    }
    return text.asText();
  }

  /** Embeds in steps, writing each step's lines as it finishes. */
  private void write(TextEmbedder embedder, List<String> all) throws IOException {
    int steps = (all.size() + TEXTS_PER_STEP - 1) / TEXTS_PER_STEP;
    ProgressBar progress = input != null ? new ProgressBar(stderr(), steps) : null;
    Writer out = openOutput();
    try {
      for (int step = 0; step < steps; step++) {
        int from = step * TEXTS_PER_STEP;
        int to = Math.min(all.size(), from + TEXTS_PER_STEP);
        float[][] vectors = embedder.embed(all.subList(from, to));
        for (int i = 0; i < vectors.length; i++) {
          out.write(line(from + i, vectors[i]));
          out.write('\n');
        }
        out.flush();
        if (progress != null) {
          progress.step(to + " of " + all.size() + " texts");
        }
      }
    } finally {
      // stdout belongs to the command line: flushed, never closed.
      if (output != null) {
        out.close();
      } else {
        out.flush();
      }
    }
  }

  private String line(int index, float[] v) {
    StringBuilder sb = new StringBuilder(v.length * 12);
    if (output != null) {
      sb.append("{\"index\": ").append(index).append(", \"embedding\": ");
    }
    sb.append('[');
    for (int i = 0; i < v.length; i++) {
      sb.append(i == 0 ? "" : ",").append(v[i]);
    }
    sb.append(']');
    return output != null ? sb.append('}').toString() : sb.toString();
  }

  private Writer openOutput() throws IOException {
    if (output == null) {
      return spec.commandLine().getOut();
    }
    try {
      Path parent = output.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      return new BufferedWriter(Files.newBufferedWriter(output, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new KilnException("cannot write " + output + ": " + e.getMessage(), e);
    }
  }

  private static PrintStream stderr() {
    return System.err;
  }
}
