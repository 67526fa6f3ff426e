package io.kiln.precision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.InvalidInputException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * Calibration results, computed once and reused without the data: for each tensor its amax, the
 * method that chose it and the number of samples seen. Stored as JSON.
 */
public final class CalibrationCache {
  static final String FORMAT = "kiln-calibration/1";
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** One calibrated tensor. */
  public record Entry(float amax, CalibrationMethod method, long samples) {}

  private final String modelSha256;
  private final String source;
  private final Map<String, Entry> tensors;
  private final Map<String, float[]> channels;

  public CalibrationCache(String modelSha256, String source, Map<String, Entry> tensors) {
    this(modelSha256, source, tensors, Map.of());
  }

  private CalibrationCache(
      String modelSha256,
      String source,
      Map<String, Entry> tensors,
      Map<String, float[]> channels) {
    this.modelSha256 = modelSha256;
    this.source = source;
    this.tensors = Collections.unmodifiableMap(new TreeMap<>(tensors));
    this.channels = Collections.unmodifiableMap(new TreeMap<>(channels));
  }

  /** This cache plus per-channel amax vectors (last axis) used by smoothing. */
  public CalibrationCache withChannels(Map<String, float[]> channelAmax) {
    return new CalibrationCache(modelSha256, source, tensors, channelAmax);
  }

  /** Per-channel amax of the tensors that smoothing rescales. */
  public Map<String, float[]> channels() {
    return channels;
  }

  public String modelSha256() {
    return modelSha256;
  }

  public String source() {
    return source;
  }

  public Map<String, Entry> tensors() {
    return tensors;
  }

  /** The amax of a tensor; an error when the cache does not cover it. */
  public float amax(String tensor) {
    Entry e = tensors.get(tensor);
    if (e == null) {
      throw new InvalidInputException(
          "calibration cache has no entry for tensor " + tensor + "; recalibrate");
    }
    return e.amax();
  }

  public void save(Path file) {
    ObjectNode root = JSON.createObjectNode();
    root.put("format", FORMAT);
    root.put("model_sha256", modelSha256);
    root.put("source", source);
    ObjectNode t = root.putObject("tensors");
    for (Map.Entry<String, Entry> e : tensors.entrySet()) {
      ObjectNode n = t.putObject(e.getKey());
      n.put("amax", e.getValue().amax());
      n.put("method", e.getValue().method().id());
      n.put("samples", e.getValue().samples());
    }
    ObjectNode ch = root.putObject("channels");
    for (Map.Entry<String, float[]> e : channels.entrySet()) {
      com.fasterxml.jackson.databind.node.ArrayNode a = ch.putArray(e.getKey());
      for (float v : e.getValue()) {
        a.add(v);
      }
    }
    try {
      Path abs = file.toAbsolutePath();
      if (abs.getParent() != null) {
        Files.createDirectories(abs.getParent());
      }
      JSON.writeValue(abs.toFile(), root);
    } catch (IOException e) {
      throw new InvalidInputException("cannot write calibration cache " + file + ": " + e);
    }
  }

  public static CalibrationCache load(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file));
    } catch (NoSuchFileException e) {
      throw new InvalidInputException("calibration cache not found: " + file);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read calibration cache " + file + ": " + e);
    }
    if (root == null || !FORMAT.equals(root.path("format").asText())) {
      throw new InvalidInputException(file + " is not a " + FORMAT + " calibration cache");
    }
    Map<String, Entry> tensors = new TreeMap<>();
    root.path("tensors")
        .fields()
        .forEachRemaining(
            e -> {
              JsonNode n = e.getValue();
              float amax = n.path("amax").floatValue();
              if (!(amax > 0) || !Float.isFinite(amax)) {
                throw new InvalidInputException(
                    file + ": tensor " + e.getKey() + " has invalid amax " + n.path("amax"));
              }
              tensors.put(
                  e.getKey(),
                  new Entry(
                      amax,
                      CalibrationMethod.parse(n.path("method").asText("max")),
                      n.path("samples").asLong()));
            });
    if (tensors.isEmpty()) {
      throw new InvalidInputException(file + ": calibration cache holds no tensors");
    }
    Map<String, float[]> channels = new TreeMap<>();
    root.path("channels")
        .fields()
        .forEachRemaining(
            e -> {
              float[] v = new float[e.getValue().size()];
              for (int i = 0; i < v.length; i++) {
                v[i] = e.getValue().get(i).floatValue();
              }
              channels.put(e.getKey(), v);
            });
    return new CalibrationCache(
        root.path("model_sha256").asText(""), root.path("source").asText(""), tensors, channels);
  }
}
