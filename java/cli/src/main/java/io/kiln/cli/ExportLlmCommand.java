package io.kiln.cli;

import io.kiln.model.llama.LlamaOnnxExporter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code kiln export-llm}: a Llama-family safetensors directory to an ONNX decoder with KV cache.
 */
@Command(
    name = "export-llm",
    mixinStandardHelpOptions = true,
    description =
        "Export a Llama-family model directory (config.json + safetensors) to an ONNX decoder"
            + " (opset 17, float32) with past/present KV inputs and outputs in the Optimum layout.")
public final class ExportLlmCommand implements Callable<Integer> {
  @Option(names = "--model", required = true, description = "Hugging Face model directory")
  Path model;

  @Option(
      names = {"-o", "--output"},
      required = true,
      description = "output directory for model.onnx and config.json")
  Path output;

  @Option(
      names = "--external-data",
      description = "store weights in model.onnx.data (automatic above 1.8 GB)")
  boolean externalData;

  @Override
  public Integer call() {
    long start = System.nanoTime();
    Path onnx = LlamaOnnxExporter.export(model, output, externalData);
    System.err.printf("wrote %s in %.1f s%n", onnx, (System.nanoTime() - start) / 1e9);
    return ExitCodes.OK;
  }
}
