package io.kiln.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.llama.LlamaTensors;
import io.kiln.model.safetensors.SafetensorsModel;
import io.kiln.model.safetensors.SafetensorsTensor;
import io.kiln.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A target and draft pair for benchmarking draft-model speculation without a trained pair. From a
 * (random) Llama: the target is that model with the output projections (o_proj, down_proj) of every
 * layer after the first {@code keep} scaled by {@code scale}, so those layers add almost nothing to
 * the residual stream; the draft is the first {@code keep} layers with the same embeddings, final
 * norm and lm_head. The draft then predicts the target's greedy tokens nearly always, while the
 * target still reads every layer's weights each step.
 *
 * <p>Usage: {@code ShallowDraftModels BASE_DIR TARGET_DIR DRAFT_DIR [keep] [scale]}
 */
public final class ShallowDraftModels {
  private static final Pattern LAYER = Pattern.compile("^model\\.layers\\.(\\d+)\\.");

  private ShallowDraftModels() {}

  public static void main(String[] args) {
    if (args.length < 3) {
      throw new InvalidInputException(
          "usage: ShallowDraftModels BASE_DIR TARGET_DIR DRAFT_DIR [keep] [scale]");
    }
    int keep = args.length > 3 ? Integer.parseInt(args[3]) : 2;
    double scale = args.length > 4 ? Double.parseDouble(args[4]) : 1e-3;
    write(Path.of(args[0]), Path.of(args[1]), Path.of(args[2]), keep, scale);
  }

  /** Writes the target and the draft of {@code base} (config.json and one model.safetensors). */
  public static void write(Path base, Path target, Path draft, int keep, double scale) {
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    try {
      ObjectNode config = (ObjectNode) json.readTree(base.resolve("config.json").toFile());
      int layers = config.get("num_hidden_layers").asInt();
      if (keep < 1 || keep >= layers) {
        throw new InvalidInputException(
            "the draft keeps 1 to " + (layers - 1) + " of " + layers + " layers, not " + keep);
      }
      Set<String> scaled = new HashSet<>();
      for (int i = keep; i < layers; i++) {
        scaled.add(LlamaTensors.layer(i).oProj());
        scaled.add(LlamaTensors.layer(i).downProj());
      }
      try (SafetensorsModel weights = SafetensorsModel.open(base)) {
        Files.createDirectories(target);
        Files.createDirectories(draft);
        json.writeValue(target.resolve("config.json").toFile(), config);
        copyIfPresent(base, target, "generation_config.json");
        copyWeights(weights, target, name -> true, scaled, (float) scale);
        ObjectNode draftConfig = config.deepCopy();
        draftConfig.put("num_hidden_layers", keep);
        json.writeValue(draft.resolve("config.json").toFile(), draftConfig);
        copyIfPresent(base, draft, "generation_config.json");
        copyWeights(weights, draft, name -> layerOf(name) < keep, Set.of(), 1f);
      }
    } catch (IOException e) {
      throw new ModelException("cannot derive models from " + base + ": " + e.getMessage(), e);
    }
  }

  /** The layer a tensor belongs to; embeddings, final norm and lm_head belong to none (-1). */
  static int layerOf(String name) {
    Matcher m = LAYER.matcher(name);
    return m.find() ? Integer.parseInt(m.group(1)) : -1;
  }

  private static void copyWeights(
      SafetensorsModel weights,
      Path out,
      java.util.function.Predicate<String> keep,
      Set<String> scaled,
      float scale) {
    List<SafetensorsWriter.Entry> entries = new ArrayList<>();
    for (String name : weights.names()) {
      if (keep.test(name)) {
        SafetensorsTensor t = weights.tensor(name);
        entries.add(new SafetensorsWriter.Entry(name, t.dtype(), t.shape()));
      }
    }
    try (SafetensorsWriter writer =
        new SafetensorsWriter(out.resolve("model.safetensors"), entries, Map.of())) {
      // One tensor at a time: a whole model need not fit in memory.
      for (SafetensorsWriter.Entry e : entries) {
        float[] values = weights.readFloats(e.name(), e.shape());
        if (scaled.contains(e.name())) {
          for (int i = 0; i < values.length; i++) {
            values[i] *= scale;
          }
        }
        writer.write(values, values.length);
      }
    }
  }

  private static void copyIfPresent(Path from, Path to, String file) throws IOException {
    if (Files.isRegularFile(from.resolve(file))) {
      Files.copy(from.resolve(file), to.resolve(file));
    }
  }
}
