package io.kiln.engine.trt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Reads calibration batches: a JSON file, or a folder of them, each an object mapping input names
 * to nested arrays ({@code {"input_ids": [[101, 2023, ...], ...], ...}}). Whole numbers become
 * int64 tensors, others float32. Keys whose values are not arrays are ignored.
 */
public final class CalibrationFiles {
  private CalibrationFiles() {}

  public static CalibrationData read(Path fileOrDir, Path cacheFile) {
    List<Path> files = new ArrayList<>();
    if (Files.isDirectory(fileOrDir)) {
      try (Stream<Path> s = Files.list(fileOrDir)) {
        s.filter(p -> p.toString().endsWith(".json")).sorted().forEach(files::add);
      } catch (IOException e) {
        throw new InvalidInputException(
            "cannot list calibration folder " + fileOrDir + ": " + e.getMessage());
      }
    } else {
      files.add(fileOrDir);
    }
    if (files.isEmpty()) {
      throw new InvalidInputException("no calibration .json files in " + fileOrDir);
    }
    ObjectMapper json = new ObjectMapper();
    List<Map<String, Tensor>> batches = new ArrayList<>();
    for (Path f : files) {
      try {
        JsonNode root = json.readTree(f.toFile());
        Map<String, Tensor> batch = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> it = root.fields();
        while (it.hasNext()) {
          Map.Entry<String, JsonNode> e = it.next();
          if (e.getValue().isArray() && e.getValue().size() > 0 && e.getValue().get(0).isArray()) {
            batch.put(e.getKey(), toTensor(e.getValue(), e.getKey(), f));
          }
        }
        batches.add(batch);
      } catch (IOException e) {
        throw new InvalidInputException(
            "cannot read calibration file " + f + ": " + e.getMessage());
      }
    }
    return new CalibrationData(batches, cacheFile);
  }

  private static Tensor toTensor(JsonNode node, String name, Path file) {
    List<Long> shape = new ArrayList<>();
    JsonNode n = node;
    while (n.isArray()) {
      shape.add((long) n.size());
      n = n.get(0);
    }
    List<JsonNode> leaves = new ArrayList<>();
    flatten(node, leaves);
    long[] dims = shape.stream().mapToLong(Long::longValue).toArray();
    if (leaves.stream().allMatch(JsonNode::isIntegralNumber)) {
      return Tensor.of(leaves.stream().mapToLong(JsonNode::asLong).toArray(), dims);
    }
    float[] v = new float[leaves.size()];
    for (int i = 0; i < v.length; i++) {
      if (!leaves.get(i).isNumber()) {
        throw new InvalidInputException(
            "calibration input " + name + " in " + file + " has a non-number");
      }
      v[i] = (float) leaves.get(i).asDouble();
    }
    return Tensor.of(v, dims);
  }

  private static void flatten(JsonNode n, List<JsonNode> out) {
    if (n.isArray()) {
      n.forEach(c -> flatten(c, out));
    } else {
      out.add(n);
    }
  }
}
