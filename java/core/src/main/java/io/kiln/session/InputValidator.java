package io.kiln.session;

import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.model.onnx.IndexRanges;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** Checks inputs against a model's declared inputs before any native call sees them. */
final class InputValidator {
  private final List<TensorInfo> declared;
  private final boolean checkFinite;
  private final IndexRanges ranges;

  InputValidator(List<TensorInfo> declared, boolean checkFinite, IndexRanges ranges) {
    this.declared = declared;
    this.checkFinite = checkFinite;
    this.ranges = ranges;
  }

  void validate(Map<String, Tensor> inputs) {
    if (inputs == null || inputs.isEmpty()) {
      throw new InvalidInputException("no inputs given; the model expects " + names());
    }
    for (String name : inputs.keySet()) {
      if (declared.stream().noneMatch(d -> d.name().equals(name))) {
        throw new InvalidInputException(
            "unknown input '" + name + "'; the model's inputs are " + names());
      }
    }
    // A symbolic dimension (or an unnamed dynamic batch axis) must agree across inputs.
    Map<String, String> firstSeen = new HashMap<>();
    Map<String, Long> sizes = new HashMap<>();
    for (TensorInfo info : declared) {
      Tensor t = inputs.get(info.name());
      if (t == null) {
        throw new InvalidInputException("missing input '" + info.name() + "'");
      }
      if (t.isClosed()) {
        throw new InvalidInputException("input '" + info.name() + "' is closed");
      }
      if (t.dtype() != info.dtype()) {
        throw new InvalidInputException(
            "input '"
                + info.name()
                + "' must be "
                + info.dtype().onnxName()
                + ", got "
                + t.dtype().onnxName());
      }
      long[] shape = t.shape();
      if (shape.length != info.rank()) {
        throw new InvalidInputException(
            "input '"
                + info.name()
                + "' must have rank "
                + info.rank()
                + " "
                + info.dimsText()
                + ", got shape "
                + Arrays.toString(shape));
      }
      long[] dims = info.dims();
      String[] symbols = info.symbolicDims();
      for (int axis = 0; axis < shape.length; axis++) {
        if (shape[axis] == 0) {
          throw new InvalidInputException(
              "input '" + info.name() + "' is empty (shape " + Arrays.toString(shape) + ")");
        }
        if (dims[axis] >= 0 && dims[axis] != shape[axis]) {
          throw new InvalidInputException(
              "input '"
                  + info.name()
                  + "' axis "
                  + axis
                  + " must be "
                  + dims[axis]
                  + ", got "
                  + shape[axis]
                  + " (shape "
                  + Arrays.toString(shape)
                  + ")");
        }
        String key =
            symbols[axis] != null ? symbols[axis] : (axis == 0 && dims[0] < 0 ? "batch" : null);
        if (dims[axis] < 0 && key != null) {
          Long seen = sizes.putIfAbsent(key, shape[axis]);
          firstSeen.putIfAbsent(key, info.name());
          if (seen != null && seen != shape[axis]) {
            String what = axis == 0 ? "batch sizes" : "sizes of dimension '" + key + "'";
            throw new InvalidInputException(
                "mismatched "
                    + what
                    + ": '"
                    + firstSeen.get(key)
                    + "' has "
                    + seen
                    + " but '"
                    + info.name()
                    + "' has "
                    + shape[axis]);
          }
        }
      }
      Long rows = ranges.rows().get(info.name());
      if (rows != null) {
        checkIndices(info.name(), t, rows);
        if (ranges.maxSequence() > 0 && shape.length > 1 && shape[1] > ranges.maxSequence()) {
          throw new InvalidInputException(
              "input '"
                  + info.name()
                  + "' holds a sequence of "
                  + shape[1]
                  + " positions; the model's position table has "
                  + ranges.maxSequence());
        }
      }
      if (checkFinite && t.dtype().isFloatingPoint()) {
        long bad = firstNonFinite(t);
        if (bad >= 0) {
          throw new InvalidInputException(
              "input '"
                  + info.name()
                  + "' has a non-finite value (NaN or infinity) at index "
                  + bad);
        }
      }
    }
  }

  /** Every value must index a row of the table: 0 to rows - 1 (no negative wrap-around). */
  private static void checkIndices(String name, Tensor t, long rows) {
    if (t.dtype() != DType.I64 && t.dtype() != DType.I32) {
      return;
    }
    ByteBuffer b = t.buffer();
    long count = t.dtype() == DType.I64 ? b.remaining() / 8 : b.remaining() / 4;
    for (int i = 0; i < count; i++) {
      long v =
          t.dtype() == DType.I64 ? b.getLong(b.position() + 8 * i) : b.getInt(b.position() + 4 * i);
      if (v < 0 || v >= rows) {
        throw new InvalidInputException(
            "input '"
                + name
                + "' has "
                + v
                + " at index "
                + i
                + "; the model's table it indexes has rows 0 to "
                + (rows - 1));
      }
    }
  }

  private static long firstNonFinite(Tensor t) {
    ByteBuffer b = t.buffer();
    if (t.dtype() == DType.F32) {
      FloatBuffer f = b.asFloatBuffer();
      for (int i = 0; i < f.limit(); i++) {
        if (!Float.isFinite(f.get(i))) {
          return i;
        }
      }
      return -1;
    }
    ShortBuffer s = b.asShortBuffer();
    // Both half and bfloat16 are non-finite exactly when all exponent bits are set.
    int expMask = t.dtype() == DType.F16 ? 0x7c00 : 0x7f80;
    for (int i = 0; i < s.limit(); i++) {
      if ((s.get(i) & expMask) == expMask) {
        return i;
      }
    }
    return -1;
  }

  private String names() {
    return declared.stream().map(TensorInfo::name).collect(Collectors.joining(", ", "[", "]"));
  }
}
