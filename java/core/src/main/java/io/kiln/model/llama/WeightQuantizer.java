package io.kiln.model.llama;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.Float8;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.safetensors.SafetensorsModel;
import io.kiln.model.safetensors.SafetensorsTensor;
import io.kiln.model.safetensors.SafetensorsWriter;
import io.kiln.util.StagedDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Writes a Llama-family checkpoint whose projection weights are stored in 8 bits: INT8 or FP8 E4M3
 * codes with one float32 scale per output row ({@code NAME_scale}), everything else as it was.
 * {@link LinearWeights} reads such checkpoints back; so do Hugging Face FP8 ones.
 */
public final class WeightQuantizer {
  /** How the projection weights are stored. */
  public enum Format {
    /** Symmetric INT8, scale = max |w| / 127 per row. */
    INT8(DType.I8, 127f),
    /** FP8 E4M3, scale = max |w| / 448 per row. */
    FP8(DType.F8E4M3, Float8.MAX_E4M3);

    final DType stored;
    final float largest;

    Format(DType stored, float largest) {
      this.stored = stored;
      this.largest = largest;
    }

    public static Format parse(String text) {
      return switch (text == null ? "" : text.trim().toLowerCase(Locale.ROOT)) {
        case "int8" -> INT8;
        case "fp8", "float8", "f8e4m3" -> FP8;
        default ->
            throw new InvalidInputException("weight format must be int8 or fp8, got " + text);
      };
    }

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Files of a model directory that are not weights, carried over as they are. */
  private static final Set<String> WEIGHT_FILES =
      Set.of(SafetensorsModel.INDEX_FILE, "config.json");

  private static final long SHARD_BYTES = 2L << 30;

  private WeightQuantizer() {}

  /**
   * Quantizes the projections of the model in {@code modelDir} into a new directory {@code out},
   * written beside it first and moved into place when complete.
   */
  public static void quantize(Path modelDir, Format format, Path out, Consumer<Double> progress) {
    LlamaConfig config = LlamaConfig.load(modelDir);
    Path target = out.toAbsolutePath();
    if (Files.exists(target)) {
      throw new InvalidInputException("output " + target + " exists already");
    }
    try (SafetensorsModel weights = SafetensorsModel.open(modelDir)) {
      Set<String> projections = projections(config);
      for (String p : projections) {
        if (!weights.contains(p)) {
          throw new ModelException("missing tensor '" + p + "' in " + modelDir);
        }
        if (!weights.tensor(p).dtype().isFloatingPoint()) {
          throw new InvalidInputException(modelDir + " is quantized already (" + p + ")");
        }
      }
      StagedDirectory.write(
          target,
          staging -> {
            writeWeights(weights, projections, format, staging, progress);
            writeConfig(modelDir, format, staging);
            copyOtherFiles(modelDir, staging);
          });
    } catch (IOException e) {
      throw new ModelException("cannot write " + out + ": " + e.getMessage(), e);
    }
  }

  /** The seven projection matrices of every layer. */
  static Set<String> projections(LlamaConfig config) {
    Set<String> names = new java.util.LinkedHashSet<>();
    for (int i = 0; i < config.numLayers(); i++) {
      LlamaTensors.Layer layer = LlamaTensors.layer(i);
      names.addAll(
          List.of(
              layer.qProj(),
              layer.kProj(),
              layer.vProj(),
              layer.oProj(),
              layer.gateProj(),
              layer.upProj(),
              layer.downProj()));
    }
    return names;
  }

  /** Codes and per-row scales of an {@code [out][in]} matrix. */
  record Quantized(float[] codes, float[] scales) {}

  /**
   * The projections of {@code weights}, replaced in place by their 8-bit values: what reading a
   * checkpoint written by {@link #quantize} gives, without writing one.
   */
  public static void quantizeInPlace(LlamaWeights weights, Format format) {
    LlamaConfig c = weights.config;
    int h = c.hiddenSize();
    for (LlamaWeights.Layer layer : weights.layers) {
      layer.wq = roundTrip(layer.wq, c.queryDim(), h, format);
      layer.wk = roundTrip(layer.wk, c.kvDim(), h, format);
      layer.wv = roundTrip(layer.wv, c.kvDim(), h, format);
      layer.wo = roundTrip(layer.wo, h, c.queryDim(), format);
      layer.wGate = roundTrip(layer.wGate, c.intermediateSize(), h, format);
      layer.wUp = roundTrip(layer.wUp, c.intermediateSize(), h, format);
      layer.wDown = roundTrip(layer.wDown, h, c.intermediateSize(), format);
    }
  }

  /** Codes times scales, as {@link LinearWeights} computes them from a written checkpoint. */
  static float[] roundTrip(float[] matrix, int out, int in, Format format) {
    Quantized q = quantizeRows(matrix, out, in, format);
    float[] values = q.codes();
    for (int row = 0; row < out; row++) {
      for (int col = 0; col < in; col++) {
        values[row * in + col] *= q.scales()[row];
      }
    }
    return values;
  }

  static Quantized quantizeRows(float[] matrix, int out, int in, Format format) {
    float[] codes = new float[matrix.length];
    float[] scales = new float[out];
    for (int row = 0; row < out; row++) {
      float scale = rowScale(matrix, row, in, format);
      scales[row] = scale;
      for (int col = 0; col < in; col++) {
        float value = matrix[row * in + col] / scale;
        codes[row * in + col] =
            format == Format.INT8 ? int8(value) : Float8.e4m3ToFloat(Float8.floatToE4m3(value));
      }
    }
    return new Quantized(codes, scales);
  }

  /**
   * The {@link Format#INT8} codes of a [out, in] matrix, as a checkpoint stores them, with each
   * row's scale written into {@code scales}: for runners that compute on the codes themselves.
   */
  public static byte[] int8Codes(float[] matrix, int out, int in, float[] scales) {
    if ((long) out * in != matrix.length || scales.length != out) {
      throw new InvalidInputException(
          "int8 codes of a "
              + out
              + " x "
              + in
              + " matrix: got "
              + matrix.length
              + " values and "
              + scales.length
              + " scales");
    }
    byte[] codes = new byte[matrix.length];
    for (int row = 0; row < out; row++) {
      float scale = rowScale(matrix, row, in, Format.INT8);
      scales[row] = scale;
      for (int col = 0; col < in; col++) {
        codes[row * in + col] = (byte) int8(matrix[row * in + col] / scale);
      }
    }
    return codes;
  }

  /** max |w| of the row over the format's largest code; 1 for a row of zeros. */
  private static float rowScale(float[] matrix, int row, int in, Format format) {
    float largest = 0;
    for (int col = 0; col < in; col++) {
      largest = Math.max(largest, Math.abs(matrix[row * in + col]));
    }
    if (!Float.isFinite(largest)) {
      throw new ModelException("row " + row + " of a weight holds " + largest);
    }
    return largest == 0 ? 1 : largest / format.largest;
  }

  private static int int8(float value) {
    return Math.max(-127, Math.min(127, Math.round(value)));
  }

  private static void writeWeights(
      SafetensorsModel weights,
      Set<String> projections,
      Format format,
      Path dir,
      Consumer<Double> progress)
      throws IOException {
    List<String> names = new ArrayList<>(new java.util.TreeSet<>(weights.names()));
    List<List<SafetensorsWriter.Entry>> shards = new ArrayList<>();
    List<SafetensorsWriter.Entry> current = new ArrayList<>();
    long bytes = 0;
    for (String name : names) {
      SafetensorsTensor t = weights.tensor(name);
      List<SafetensorsWriter.Entry> entries = new ArrayList<>();
      if (projections.contains(name)) {
        entries.add(new SafetensorsWriter.Entry(name, format.stored, t.shape()));
        entries.add(
            new SafetensorsWriter.Entry(
                LlamaTensors.weightScale(name), DType.F32, new long[] {t.shape()[0]}));
      } else {
        entries.add(new SafetensorsWriter.Entry(name, t.dtype(), t.shape()));
      }
      long size = entries.stream().mapToLong(SafetensorsWriter.Entry::byteLength).sum();
      if (!current.isEmpty() && bytes + size > SHARD_BYTES) {
        shards.add(current);
        current = new ArrayList<>();
        bytes = 0;
      }
      current.addAll(entries);
      bytes += size;
    }
    shards.add(current);
    Map<String, String> weightMap = new LinkedHashMap<>();
    int done = 0;
    for (int s = 0; s < shards.size(); s++) {
      String file =
          shards.size() == 1
              ? "model.safetensors"
              : String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", s + 1, shards.size());
      try (SafetensorsWriter writer =
          new SafetensorsWriter(dir.resolve(file), shards.get(s), Map.of("format", "pt"))) {
        for (SafetensorsWriter.Entry entry : shards.get(s)) {
          weightMap.put(entry.name(), file);
          if (entry.name().endsWith("_scale") && !weights.contains(entry.name())) {
            continue; // written with its weight, just below
          }
          if (projections.contains(entry.name())) {
            long[] shape = entry.shape();
            float[] matrix = weights.readFloats(entry.name(), shape);
            Quantized q = quantizeRows(matrix, (int) shape[0], (int) shape[1], format);
            writer.write(q.codes(), q.codes().length);
            writer.write(q.scales(), q.scales().length);
          } else {
            float[] values = weights.readFloats(entry.name(), entry.shape());
            writer.write(values, values.length);
          }
          progress.accept(++done / (double) names.size());
        }
      }
    }
    if (shards.size() > 1) {
      ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ObjectNode index = mapper.createObjectNode();
      index.putObject("metadata");
      ObjectNode map = index.putObject("weight_map");
      weightMap.forEach(map::put);
      mapper.writeValue(dir.resolve(SafetensorsModel.INDEX_FILE).toFile(), index);
    }
  }

  /** config.json with a {@code quantization_config} that says what was done. */
  private static void writeConfig(Path modelDir, Format format, Path dir) throws IOException {
    ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode config = (ObjectNode) mapper.readTree(modelDir.resolve("config.json").toFile());
    ObjectNode q = config.putObject("quantization_config");
    q.put("quant_method", format == Format.FP8 ? "fp8" : "int8");
    q.put("weight_scale", "per_channel");
    q.put("activation_scheme", "dynamic");
    q.putArray("modules_to_not_convert").add("lm_head").add("embed_tokens");
    mapper.writeValue(dir.resolve("config.json").toFile(), config);
  }

  private static void copyOtherFiles(Path modelDir, Path dir) throws IOException {
    try (var files = Files.list(modelDir)) {
      for (Path f : files.toList()) {
        String name = f.getFileName().toString();
        if (Files.isRegularFile(f)
            && !name.endsWith(".safetensors")
            && !WEIGHT_FILES.contains(name)) {
          Files.copy(f, dir.resolve(name));
        }
      }
    }
  }
}
