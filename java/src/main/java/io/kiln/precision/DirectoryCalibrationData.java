package io.kiln.precision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Calibration samples in a directory, read one at a time: each {@code *.json} file is one feed in
 * the {@code kiln run} input format ({@code {"NAME": {"dtype", "shape", "data"}}}, data flat and
 * row-major), and each subdirectory holding {@code NAME.npy} files is one feed.
 */
public final class DirectoryCalibrationData implements CalibrationData {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Path dir;
  private final List<Path> samples;

  public DirectoryCalibrationData(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new InvalidInputException("calibration directory not found: " + dir);
    }
    this.dir = dir;
    List<Path> found = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      s.sorted()
          .forEach(
              p -> {
                if (p.toString().endsWith(".json") && Files.isRegularFile(p)) {
                  found.add(p);
                } else if (Files.isDirectory(p) && hasNpy(p)) {
                  found.add(p);
                }
              });
    } catch (IOException e) {
      throw new InvalidInputException("cannot list calibration directory " + dir + ": " + e);
    }
    if (found.isEmpty()) {
      throw new InvalidInputException(
          "calibration set is empty: no *.json files or .npy sample folders in " + dir);
    }
    this.samples = found;
  }

  private static boolean hasNpy(Path d) {
    try (Stream<Path> s = Files.list(d)) {
      return s.anyMatch(p -> p.toString().endsWith(".npy"));
    } catch (IOException e) {
      return false;
    }
  }

  @Override
  public String description() {
    return dir + " (" + samples.size() + " samples)";
  }

  public int size() {
    return samples.size();
  }

  @Override
  public Iterator<Map<String, Tensor>> batches() {
    Iterator<Path> it = samples.iterator();
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return it.hasNext();
      }

      @Override
      public Map<String, Tensor> next() {
        Path p = it.next();
        return Files.isDirectory(p) ? readNpyDir(p) : readJson(p);
      }
    };
  }

  /** Reads one feed in the {@code kiln run} JSON input format. */
  public static Map<String, Tensor> readJson(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new InvalidInputException("cannot read input file " + file + ": " + e.getMessage());
    }
    if (root == null || !root.isObject() || root.isEmpty()) {
      throw new InvalidInputException("input file " + file + " holds no inputs");
    }
    Map<String, Tensor> feed = new LinkedHashMap<>();
    root.fields()
        .forEachRemaining(e -> feed.put(e.getKey(), jsonTensor(file, e.getKey(), e.getValue())));
    return feed;
  }

  private static Tensor jsonTensor(Path file, String name, JsonNode n) {
    String where = file.getFileName() + ": input " + name;
    if (!n.has("dtype") || !n.has("shape") || !n.has("data")) {
      throw new InvalidInputException(where + " needs dtype, shape and data");
    }
    DType dtype = DType.parse(n.get("dtype").asText());
    long[] shape = new long[n.get("shape").size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = n.get("shape").get(i).asLong();
    }
    JsonNode data = n.get("data");
    int len = data.size();
    switch (dtype) {
      case F32 -> {
        float[] v = new float[len];
        for (int i = 0; i < len; i++) {
          v[i] = (float) data.get(i).asDouble();
        }
        return Tensor.of(v, shape);
      }
      case I64 -> {
        long[] v = new long[len];
        for (int i = 0; i < len; i++) {
          v[i] = data.get(i).asLong();
        }
        return Tensor.of(v, shape);
      }
      case I32 -> {
        int[] v = new int[len];
        for (int i = 0; i < len; i++) {
          v[i] = data.get(i).asInt();
        }
        return Tensor.of(v, shape);
      }
      case BOOL -> {
        boolean[] v = new boolean[len];
        for (int i = 0; i < len; i++) {
          v[i] = data.get(i).asBoolean();
        }
        return Tensor.of(v, shape);
      }
      default -> throw new InvalidInputException(where + ": dtype " + dtype + " not supported");
    }
  }

  private static Map<String, Tensor> readNpyDir(Path d) {
    Map<String, Tensor> feed = new LinkedHashMap<>();
    try (Stream<Path> s = Files.list(d)) {
      for (Path p : s.sorted().toList()) {
        String f = p.getFileName().toString();
        if (f.endsWith(".npy")) {
          feed.put(f.substring(0, f.length() - 4), readNpy(p));
        }
      }
    } catch (IOException e) {
      throw new InvalidInputException("cannot read calibration sample " + d + ": " + e);
    }
    return feed;
  }

  /** Reads a little-endian, C-order {@code .npy} array of float32, int64, int32 or bool. */
  public static Tensor readNpy(Path file) {
    byte[] b;
    try {
      b = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read " + file + ": " + e.getMessage());
    }
    if (b.length < 10 || b[0] != (byte) 0x93 || b[1] != 'N' || b[2] != 'U') {
      throw new InvalidInputException(file + " is not a .npy file");
    }
    int major = b[6];
    ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    int headerLen = major == 1 ? bb.getShort(8) & 0xffff : bb.getInt(8);
    int start = major == 1 ? 10 : 12;
    if (start + headerLen > b.length) {
      throw new InvalidInputException(file + ": truncated .npy header");
    }
    String header = new String(b, start, headerLen, StandardCharsets.ISO_8859_1);
    String descr = field(header, "descr", file).replace("'", "").trim();
    if (field(header, "fortran_order", file).trim().startsWith("True")) {
      throw new InvalidInputException(file + ": Fortran-order arrays are not supported");
    }
    String shapeText = header.substring(header.indexOf('(') + 1, header.indexOf(')'));
    long[] shape =
        Stream.of(shapeText.split(","))
            .map(String::trim)
            .filter(x -> !x.isEmpty())
            .mapToLong(Long::parseLong)
            .toArray();
    int n = 1;
    for (long dim : shape) {
      n = Math.multiplyExact(n, Math.toIntExact(dim));
    }
    ByteBuffer data = ByteBuffer.wrap(b, start + headerLen, b.length - start - headerLen);
    data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    int size =
        switch (descr) {
          case "<f4", "<i4" -> 4;
          case "<i8" -> 8;
          case "|b1", "|i1" -> 1;
          default -> throw new InvalidInputException(file + ": dtype " + descr + " not supported");
        };
    if (data.remaining() < (long) n * size) {
      throw new InvalidInputException(file + ": data shorter than its shape");
    }
    switch (descr) {
      case "<f4" -> {
        float[] v = new float[n];
        data.asFloatBuffer().get(v);
        return Tensor.of(v, shape);
      }
      case "<i4" -> {
        int[] v = new int[n];
        data.asIntBuffer().get(v);
        return Tensor.of(v, shape);
      }
      case "<i8" -> {
        long[] v = new long[n];
        data.asLongBuffer().get(v);
        return Tensor.of(v, shape);
      }
      case "|i1" -> {
        byte[] v = new byte[n];
        data.get(v);
        return Tensor.of(v, shape);
      }
      default -> {
        boolean[] v = new boolean[n];
        for (int i = 0; i < n; i++) {
          v[i] = data.get(i) != 0;
        }
        return Tensor.of(v, shape);
      }
    }
  }

  private static String field(String header, String key, Path file) {
    int k = header.indexOf("'" + key + "'");
    if (k < 0) {
      throw new InvalidInputException(file + ": .npy header lacks " + key);
    }
    int colon = header.indexOf(':', k);
    int end = header.indexOf(',', colon);
    return header.substring(colon + 1, end < 0 ? header.length() : end);
  }
}
