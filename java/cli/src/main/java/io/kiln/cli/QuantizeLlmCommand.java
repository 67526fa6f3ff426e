package io.kiln.cli;

import io.kiln.model.llama.WeightQuantizer;
import io.kiln.util.ProgressBar;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code kiln quantize-llm}: a Llama-family checkpoint with 8-bit projection weights. */
@Command(
    name = "quantize-llm",
    description =
        "Write a Llama-family model whose projection weights are INT8 or FP8 E4M3 codes with one"
            + " scale per output row (safetensors and a quantization_config); every runner reads"
            + " it, the CPU runner dequantized as the reference.")
final class QuantizeLlmCommand implements Callable<Integer> {
  @Option(
      names = "--model",
      required = true,
      paramLabel = "DIR",
      description = "Hugging Face model directory")
  Path model;

  @Option(
      names = "--precision",
      required = true,
      description = "int8 (symmetric, per row) or fp8 (E4M3, per row)")
  String precision;

  @Option(
      names = {"-o", "--output"},
      required = true,
      paramLabel = "DIR",
      description = "the new model directory (must not exist)")
  Path output;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws IOException {
    WeightQuantizer.Format format;
    try {
      format = WeightQuantizer.Format.parse(precision);
    } catch (io.kiln.InvalidInputException e) {
      throw OptionRanges.usage(spec, "--precision must be int8 or fp8, got '" + precision + "'");
    }
    ProgressBar progress = new ProgressBar(System.err, 100);
    int[] shown = {0};
    long start = System.nanoTime();
    WeightQuantizer.quantize(
        model,
        format,
        output,
        done -> {
          while (shown[0] < (int) Math.floor(done * 100)) {
            shown[0]++;
            progress.step("quantizing to " + format.label());
          }
        });
    System.err.printf(
        Locale.ROOT,
        "wrote %s: weights %.1f MiB, from %.1f MiB, in %.1f s%n",
        output,
        weightBytes(output) / 1048576.0,
        weightBytes(model) / 1048576.0,
        (System.nanoTime() - start) / 1e9);
    return ExitCodes.OK;
  }

  private static long weightBytes(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      long total = 0;
      for (Path f : files.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
        total += Files.size(f);
      }
      return total;
    }
  }
}
