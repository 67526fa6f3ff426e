package io.kiln.model;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The scripting format of tensors: a JSON object mapping each name to {@code {"dtype": "...",
 * "shape": [...], "data": [...]}} with the data flat and row-major.
 */
public final class TensorJson {
  private static final ObjectMapper JSON = new ObjectMapper();

  private TensorJson() {}

  public static Map<String, Tensor> read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(file.toFile());
    } catch (NoSuchFileException | java.io.FileNotFoundException e) {
      throw new InvalidInputException("inputs file not found: " + file);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new InvalidInputException(
          "inputs file " + file + " is not valid JSON at " + JsonProblems.oneLine(e));
    } catch (IOException e) {
      throw new InvalidInputException("cannot read inputs file " + file + ": " + e.getMessage());
    }
    if (root == null || !root.isObject()) {
      throw new InvalidInputException("inputs file " + file + " must hold a JSON object");
    }
    Map<String, Tensor> out = new LinkedHashMap<>();
    try {
      for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        out.put(e.getKey(), parse(e.getKey(), e.getValue()));
      }
    } catch (RuntimeException e) {
      out.values().forEach(Tensor::close);
      throw e;
    }
    return out;
  }

  private static Tensor parse(String name, JsonNode node) {
    JsonNode dtypeNode = node.get("dtype");
    JsonNode shapeNode = node.get("shape");
    JsonNode dataNode = node.get("data");
    if (dtypeNode == null
        || shapeNode == null
        || dataNode == null
        || !shapeNode.isArray()
        || !dataNode.isArray()) {
      throw new InvalidInputException(
          "input '" + name + "' needs \"dtype\", \"shape\" (array) and \"data\" (flat array)");
    }
    DType dtype = DType.parse(dtypeNode.asText());
    long[] shape = new long[shapeNode.size()];
    for (int i = 0; i < shape.length; i++) {
      JsonNode d = shapeNode.get(i);
      if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
        throw new InvalidInputException(
            "input '" + name + "': shape entries must be non-negative integers, got " + d);
      }
      shape[i] = d.asLong();
    }
    int n = dataNode.size();
    try {
      return switch (dtype) {
        case F32, F16, BF16, F8E4M3 -> {
          float[] v = new float[n];
          for (int i = 0; i < n; i++) {
            v[i] = floatValue(name, dataNode.get(i));
          }
          yield Tensor.ofFloats(dtype, v, shape);
        }
        case I64 -> {
          long[] v = new long[n];
          for (int i = 0; i < n; i++) {
            v[i] = integral(name, dataNode.get(i));
          }
          yield Tensor.of(v, shape);
        }
        case I32 -> {
          int[] v = new int[n];
          for (int i = 0; i < n; i++) {
            v[i] = Math.toIntExact(integral(name, dataNode.get(i)));
          }
          yield Tensor.of(v, shape);
        }
        case I8 -> {
          byte[] v = new byte[n];
          for (int i = 0; i < n; i++) {
            long x = integral(name, dataNode.get(i));
            if (x < Byte.MIN_VALUE || x > Byte.MAX_VALUE) {
              throw new InvalidInputException("input '" + name + "': " + x + " is not an int8");
            }
            v[i] = (byte) x;
          }
          yield Tensor.of(v, shape);
        }
        case BOOL -> {
          boolean[] v = new boolean[n];
          for (int i = 0; i < n; i++) {
            JsonNode x = dataNode.get(i);
            v[i] = x.isBoolean() ? x.asBoolean() : integral(name, x) != 0;
          }
          yield Tensor.of(v, shape);
        }
      };
    } catch (ArithmeticException e) {
      throw new InvalidInputException("input '" + name + "': value out of range for " + dtype);
    }
  }

  private static float floatValue(String name, JsonNode x) {
    if (x.isNumber()) {
      return x.floatValue();
    }
    if (x.isTextual()) {
      // JSON has no NaN or infinity literals; accept the usual spellings so they can be rejected
      // later with a clear message rather than here as a parse error.
      switch (x.asText()) {
        case "NaN", "nan" -> {
          return Float.NaN;
        }
        case "Infinity", "inf" -> {
          return Float.POSITIVE_INFINITY;
        }
        case "-Infinity", "-inf" -> {
          return Float.NEGATIVE_INFINITY;
        }
        default -> {}
      }
    }
    throw new InvalidInputException("input '" + name + "' has a non-numeric value: " + x);
  }

  private static long integral(String name, JsonNode x) {
    if (!x.isIntegralNumber()) {
      throw new InvalidInputException("input '" + name + "' needs integers, got " + x);
    }
    if (!x.canConvertToLong()) {
      throw new InvalidInputException("input '" + name + "' has " + x + ", outside int64");
    }
    return x.asLong();
  }

  public static void write(Map<String, Tensor> tensors, Path file) {
    try (OutputStream out = Files.newOutputStream(file)) {
      write(tensors, out);
    } catch (IOException e) {
      throw new io.kiln.KilnException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  public static void write(Map<String, Tensor> tensors, OutputStream stream) throws IOException {
    try (JsonGenerator g =
        JSON.getFactory()
            .createGenerator(stream)
            .disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET)) {
      g.writeStartObject();
      for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
        Tensor t = e.getValue();
        g.writeObjectFieldStart(e.getKey());
        g.writeStringField("dtype", t.dtype().onnxName());
        g.writeArrayFieldStart("shape");
        for (long d : t.shape()) {
          g.writeNumber(d);
        }
        g.writeEndArray();
        g.writeArrayFieldStart("data");
        switch (t.dtype()) {
          case F32, F16, BF16, F8E4M3 -> {
            for (float v : t.toFloatArray()) {
              g.writeNumber(v);
            }
          }
          case BOOL -> {
            for (boolean v : t.toBooleanArray()) {
              g.writeBoolean(v);
            }
          }
          default -> {
            for (long v : t.toLongArray()) {
              g.writeNumber(v);
            }
          }
        }
        g.writeEndArray();
        g.writeEndObject();
      }
      g.writeEndObject();
    }
    stream.flush();
  }
}
