package io.kiln.cli;

import io.kiln.TensorInfo;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.session.Session;
import java.io.PrintWriter;
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
      description = "ONNX file (default: the embedded all-MiniLM-L6-v2)")
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
    out.flush();
    return ExitCodes.OK;
  }
}
