package io.kiln.cli;

import io.kiln.TensorInfo;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.embedding.ModelDirectory;
import io.kiln.embedding.SentenceTransformersConfig;
import io.kiln.session.Session;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/** {@code kiln inspect MODEL}: lists a model's inputs and outputs. */
@Command(name = "inspect", description = "List a model's inputs and outputs (name, dtype, dims).")
final class InspectCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "MODEL",
      description =
          "ONNX file or model directory (onnx/model.onnx or model.onnx; default: the embedded"
              + " all-MiniLM-L6-v2)")
  Path model;

  @Mixin SessionOptions options;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (Session s = options.builder(model, DefaultEmbeddingModel.get().modelResource()).build()) {
      out.println("backend: " + s.backendName() + " (" + s.deviceDescription() + ")");
      out.println("inputs:");
      for (TensorInfo i : s.inputs()) {
        out.printf("  %-32s %-9s %s%n", i.name(), i.dtype().onnxName(), i.dimsText());
      }
      out.println("outputs:");
      for (TensorInfo o : s.outputs()) {
        out.printf("  %-32s %-9s %s%n", o.name(), o.dtype().onnxName(), o.dimsText());
      }
    }
    if (model != null && Files.isRegularFile(model.resolve("tokenizer.json"))) {
      describeEmbedding(out, ModelDirectory.open(model));
    }
    out.flush();
    return ExitCodes.OK;
  }

  /** What the sentence-transformers files of a model directory say about embedding. */
  private static void describeEmbedding(PrintWriter out, ModelDirectory dir) {
    SentenceTransformersConfig st = dir.config();
    out.println("embedding:");
    out.println(
        "  pooling    "
            + (st.pooling() != null ? st.pooling().optionName() : "not given (needs --pooling)"));
    out.println(
        "  normalize  "
            + (st.normalize() == null
                ? "not given (needs --normalize or --no-normalize)"
                : st.normalize() ? "yes" : "no"));
    out.println("  max tokens " + dir.maxTokens());
    if (!st.prompts().isEmpty()) {
      out.println("  prompts    " + String.join(", ", st.prompts().keySet()));
    }
  }
}
