package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.embedding.TextEmbedder;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln embed TEXT...}: one normalized sentence embedding per line, as a JSON array. */
@Command(
    name = "embed",
    description =
        "Print normalized sentence embeddings (mean pooling, then L2), one JSON array per"
            + " line.")
final class EmbedCommand implements Callable<Integer> {
  @Parameters(arity = "1..*", paramLabel = "TEXT", description = "texts to embed")
  List<String> texts;

  @Option(
      names = "--model",
      paramLabel = "MODEL",
      description = "ONNX encoder (default: the" + " embedded all-MiniLM-L6-v2)")
  Path model;

  @Option(
      names = "--tokenizer",
      paramLabel = "TOKENIZER.json",
      description = "the model's" + " tokenizer.json (required with --model)")
  Path tokenizer;

  @Mixin SessionOptions options;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    if (model != null && tokenizer == null) {
      throw new InvalidInputException("--model needs --tokenizer TOKENIZER.json");
    }
    try (TextEmbedder embedder =
        model == null
            ? TextEmbedder.defaultModel(options::apply)
            : TextEmbedder.open(options.builder(model, null), tokenizer)) {
      PrintWriter out = spec.commandLine().getOut();
      for (float[] e : embedder.embed(texts)) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < e.length; i++) {
          sb.append(i == 0 ? "" : ",").append(e[i]);
        }
        out.println(sb.append(']'));
      }
      out.flush();
    }
    return ExitCodes.OK;
  }
}
