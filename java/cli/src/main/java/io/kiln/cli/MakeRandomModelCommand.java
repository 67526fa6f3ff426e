package io.kiln.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.llama.RandomLlamaModel;
import io.kiln.util.ProgressBar;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code kiln make-random-model}: a Hugging Face Llama directory with seeded random weights. */
@Command(
    name = "make-random-model",
    mixinStandardHelpOptions = true,
    description = "Write a Hugging Face-loadable Llama model directory with random weights.")
public final class MakeRandomModelCommand implements Callable<Integer> {
  @Option(
      names = "--shape",
      required = true,
      description = "llama-3.2-1b, llama-3-8b, tiny, or a config.json file")
  String shape;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "random seed (default ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--dtype",
      defaultValue = "f16",
      description = "f16, bf16 or f32 (default ${DEFAULT-VALUE})")
  String dtype;

  @Option(
      names = {"-o", "--output"},
      required = true,
      description = "output directory")
  Path output;

  @Option(
      names = "--shard-size-mb",
      defaultValue = "2048",
      description = "split weights into shards of at most this size (default ${DEFAULT-VALUE})")
  long shardSizeMb;

  @Option(names = "--force", description = "write even a model larger than the free disk")
  boolean force;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    OptionRanges.between(spec, "--shard-size-mb", shardSizeMb, 1, 1L << 20);
    ObjectNode config = config(shape);
    long start = System.nanoTime();
    ProgressBar progress = new ProgressBar(System.err, 100);
    int[] shown = {0};
    RandomLlamaModel.write(
        config,
        seed,
        DType.parse(dtype),
        output,
        shardSizeMb << 20,
        force,
        done -> {
          while (shown[0] < (int) Math.floor(done * 100)) {
            shown[0]++;
            progress.step("writing weights");
          }
        });
    System.err.printf("wrote %s in %.1f s%n", output, (System.nanoTime() - start) / 1e9);
    return ExitCodes.OK;
  }

  private static ObjectNode config(String shape) {
    Path file = Path.of(shape);
    if (!shape.endsWith(".json")) {
      return RandomLlamaModel.shape(shape);
    }
    if (!Files.isRegularFile(file)) {
      throw new InvalidInputException("config file not found: " + file);
    }
    try {
      JsonNode node = new ObjectMapper().readTree(file.toFile());
      if (!(node instanceof ObjectNode)) {
        throw new ModelException(file + " is not a JSON object");
      }
      return (ObjectNode) node;
    } catch (IOException e) {
      throw new ModelException("cannot parse " + file + ": " + e.getMessage(), e);
    }
  }
}
