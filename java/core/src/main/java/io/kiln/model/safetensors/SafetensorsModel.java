package io.kiln.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.ModelException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The weights of a model directory: one {@code model.safetensors}, or shards listed by {@code
 * model.safetensors.index.json}. Tensors are looked up by name across all shards.
 */
public final class SafetensorsModel implements AutoCloseable {
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private final Path directory;
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> byTensor;

  private SafetensorsModel(Path directory, List<SafetensorsFile> files) {
    this.directory = directory;
    this.files = files;
    Map<String, SafetensorsFile> map = new LinkedHashMap<>();
    for (SafetensorsFile f : files) {
      for (String name : f.tensors().keySet()) {
        SafetensorsFile previous = map.put(name, f);
        if (previous != null) {
          throw new ModelException(
              "tensor '" + name + "' appears in both " + previous.path() + " and " + f.path());
        }
      }
    }
    this.byTensor = Collections.unmodifiableMap(map);
  }

  /** Opens a directory's weights (index first, else every *.safetensors file) or one file. */
  public static SafetensorsModel open(Path path) {
    if (Files.isRegularFile(path)) {
      return new SafetensorsModel(path.getParent(), List.of(SafetensorsFile.open(path)));
    }
    if (!Files.isDirectory(path)) {
      throw new ModelException("model path not found: " + path);
    }
    List<Path> shards =
        Files.isRegularFile(path.resolve(INDEX_FILE)) ? indexedShards(path) : listed(path);
    if (shards.isEmpty()) {
      throw new ModelException("no *.safetensors files in " + path);
    }
    List<SafetensorsFile> files = new ArrayList<>();
    try {
      for (Path shard : shards) {
        files.add(SafetensorsFile.open(shard));
      }
      return new SafetensorsModel(path, files);
    } catch (RuntimeException e) {
      files.forEach(SafetensorsFile::close);
      throw e;
    }
  }

  private static List<Path> indexedShards(Path directory) {
    Path index = directory.resolve(INDEX_FILE);
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(index.toFile());
    } catch (IOException e) {
      throw new ModelException("cannot parse " + index + ": " + e.getMessage(), e);
    }
    JsonNode weightMap = root == null ? null : root.get("weight_map");
    if (weightMap == null || !weightMap.isObject()) {
      throw new ModelException(index + " has no weight_map object");
    }
    List<Path> shards = new ArrayList<>();
    for (Iterator<JsonNode> it = weightMap.elements(); it.hasNext(); ) {
      String file = it.next().asText();
      Path shard = directory.resolve(file).normalize();
      if (!shard.startsWith(directory.normalize())) {
        throw new ModelException(index + " points outside its directory: " + file);
      }
      if (!shards.contains(shard)) {
        shards.add(shard);
      }
    }
    return shards;
  }

  private static List<Path> listed(Path directory) {
    try (Stream<Path> s = Files.list(directory)) {
      return s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
    } catch (IOException e) {
      throw new ModelException("cannot list " + directory + ": " + e.getMessage(), e);
    }
  }

  public Path directory() {
    return directory;
  }

  public boolean contains(String name) {
    return byTensor.containsKey(name);
  }

  /** Every tensor name across shards. */
  public java.util.Set<String> names() {
    return byTensor.keySet();
  }

  public SafetensorsTensor tensor(String name) {
    return file(name).tensors().get(name);
  }

  /** Reads a floating-point tensor as float32, checking its shape. */
  public float[] readFloats(String name, long... expectedShape) {
    SafetensorsTensor t = tensor(name);
    if (!java.util.Arrays.equals(t.shape(), expectedShape)) {
      throw new ModelException(
          "tensor '"
              + name
              + "' in "
              + directory
              + " has shape "
              + java.util.Arrays.toString(t.shape())
              + ", expected "
              + java.util.Arrays.toString(expectedShape));
    }
    return file(name).readFloats(name);
  }

  private SafetensorsFile file(String name) {
    SafetensorsFile f = byTensor.get(name);
    if (f == null) {
      throw new ModelException("missing tensor '" + name + "' in " + directory);
    }
    return f;
  }

  @Override
  public void close() {
    files.forEach(SafetensorsFile::close);
  }
}
