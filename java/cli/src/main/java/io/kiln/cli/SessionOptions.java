package io.kiln.cli;

import io.kiln.Backend;
import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.embedding.ModelDirectory;
import io.kiln.session.Session;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** The session options shared by every command that runs a model. */
final class SessionOptions {
  @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
  CommandLine.Model.CommandSpec spec;

  @Option(
      names = "--device",
      description = "auto, cpu or cuda (default: ${DEFAULT-VALUE})",
      defaultValue = "auto")
  Device device;

  @Option(
      names = "--precision",
      description = "fp32, fp16 or int8 (default: ${DEFAULT-VALUE})",
      defaultValue = "fp32")
  Precision precision;

  @Option(
      names = "--backend",
      description = "auto, tensorrt or onnxruntime (default: ${DEFAULT-VALUE})",
      defaultValue = "auto")
  Backend backend;

  @Option(names = "--threads", description = "CPU compute threads (default: all cores)")
  Integer threads;

  @Option(
      names = "--max-batch",
      description = "largest batch one run may carry (default: ${DEFAULT-VALUE})",
      defaultValue = "32")
  int maxBatch;

  @Option(
      names = "--no-cuda-graphs",
      negatable = true,
      description = "capture CUDA graphs per shape on GPU backends (default: on)",
      defaultValue = "true")
  boolean cudaGraphs;

  /**
   * A builder for {@code model} (an ONNX file, a model directory holding onnx/model.onnx or
   * model.onnx, or null for the embedded default) with these options.
   */
  Session.Builder builder(Path model, String defaultResource) {
    Session.Builder b =
        model != null
            ? Session.builder(ModelDirectory.onnxFile(model))
            : Session.builderFromResource(defaultResource);
    return apply(b);
  }

  Session.Builder apply(Session.Builder b) {
    checkRanges();
    b.device(device).precision(precision).backend(backend).maxBatchSize(maxBatch);
    b.cudaGraphs(cudaGraphs);
    if (threads != null) {
      b.intraOpThreads(threads);
    }
    return b;
  }

  /** A thread count or batch size out of range is a usage error. */
  void checkRanges() {
    OptionRanges.threads(spec, "--threads", threads);
    OptionRanges.between(spec, "--max-batch", maxBatch, 1, 1 << 16);
  }
}
