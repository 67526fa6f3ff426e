package io.kiln.spark;

import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * One row's cell as a model input: nested arrays become a tensor of batch 1 whose dims are the
 * nesting (a 1-D array of n is {@code [1, n]}), in the model input's dtype. Ragged arrays, nulls
 * and a rank other than the model's are refused before any native call.
 */
final class RowTensors {
  private RowTensors() {}

  static Tensor toTensor(Object cell, String name, DType dtype, int modelRank) {
    if (cell == null) {
      throw new InvalidInputException("input '" + name + "' is null");
    }
    // The dims come from the first element at each depth; flatten checks every other against them.
    List<Long> dims = new ArrayList<>();
    dims.add(1L);
    for (Object probe = cell; probe != null && isArray(probe); ) {
      List<?> level = asList(probe, name);
      dims.add((long) level.size());
      probe = level.isEmpty() ? null : level.get(0);
    }
    if (dims.size() == 1) {
      throw new InvalidInputException("input '" + name + "' must be an array column");
    }
    List<Object> flat = new ArrayList<>();
    flatten(asList(cell, name), name, dims, 1, flat);
    if (dims.size() != modelRank) {
      throw new InvalidInputException(
          "input '"
              + name
              + "' has "
              + (dims.size() - 1)
              + " dims per row, the model takes "
              + (modelRank - 1)
              + " (rank "
              + modelRank
              + " with the batch)");
    }
    long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
    return switch (dtype) {
      case F32, F16, BF16 -> Tensor.ofFloats(dtype, floats(flat, name), shape);
      case I64 -> Tensor.of(longs(flat, name), shape);
      case I32 -> Tensor.of(ints(flat, name), shape);
      case I8 -> Tensor.of(bytes(flat, name), shape);
      case BOOL -> Tensor.of(booleans(flat, name), shape);
      default ->
          throw new InvalidInputException("input '" + name + "' is " + dtype + ", unsupported");
    };
  }

  /** The output row's values as float32, flattened row-major without the batch axis. */
  static float[] toFloats(Tensor t) {
    if (t.dtype().isFloatingPoint() || t.dtype() == DType.F8E4M3) {
      return t.toFloatArray();
    }
    long[] values = t.toLongArray();
    float[] out = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }

  /** Every array at {@code depth} must have {@code dims[depth]} elements; leaves at the last. */
  private static void flatten(
      List<?> values, String name, List<Long> dims, int depth, List<Object> out) {
    if (dims.get(depth) != values.size()) {
      throw new InvalidInputException("input '" + name + "' is ragged: not a rectangular array");
    }
    boolean last = depth == dims.size() - 1;
    for (Object v : values) {
      if (v == null) {
        throw new InvalidInputException("input '" + name + "' holds a null");
      }
      if (isArray(v) == last) {
        throw new InvalidInputException("input '" + name + "' is ragged: not a rectangular array");
      }
      if (last) {
        out.add(v);
      } else {
        flatten(asList(v, name), name, dims, depth + 1, out);
      }
    }
  }

  private static boolean isArray(Object v) {
    return v instanceof List<?> || v instanceof scala.collection.Seq<?>;
  }

  private static List<?> asList(Object cell, String name) {
    if (cell instanceof List<?> list) {
      return list;
    }
    if (cell instanceof scala.collection.Seq<?> seq) {
      return scala.jdk.javaapi.CollectionConverters.asJava(seq);
    }
    throw new InvalidInputException("input '" + name + "' must be an array column");
  }

  private static Number number(Object v, String name) {
    if (v instanceof Number n) {
      return n;
    }
    if (v instanceof Boolean b) {
      return b ? 1 : 0;
    }
    throw new InvalidInputException("input '" + name + "' holds " + v + ", not a number");
  }

  private static float[] floats(List<Object> flat, String name) {
    float[] out = new float[flat.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = number(flat.get(i), name).floatValue();
    }
    return out;
  }

  private static long[] longs(List<Object> flat, String name) {
    long[] out = new long[flat.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = number(flat.get(i), name).longValue();
    }
    return out;
  }

  private static int[] ints(List<Object> flat, String name) {
    int[] out = new int[flat.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = Math.toIntExact(number(flat.get(i), name).longValue());
    }
    return out;
  }

  private static byte[] bytes(List<Object> flat, String name) {
    byte[] out = new byte[flat.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = number(flat.get(i), name).byteValue();
    }
    return out;
  }

  private static boolean[] booleans(List<Object> flat, String name) {
    boolean[] out = new boolean[flat.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = number(flat.get(i), name).intValue() != 0;
    }
    return out;
  }
}
