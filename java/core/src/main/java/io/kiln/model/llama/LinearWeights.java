package io.kiln.model.llama;

import io.kiln.DType;
import io.kiln.ModelException;
import io.kiln.model.safetensors.SafetensorsModel;
import io.kiln.model.safetensors.SafetensorsTensor;
import java.util.Arrays;

/**
 * Reads a projection matrix as float32, whatever its storage: float, or INT8 or FP8 E4M3 codes with
 * a scale per tensor, per output row, or per block (Hugging Face's fine-grained FP8). The float32
 * result is the reference the runners compute with.
 */
public final class LinearWeights {
  private LinearWeights() {}

  /** The {@code [out][in]} matrix {@code name}, dequantized when it is stored quantized. */
  public static float[] read(SafetensorsModel weights, String name, long out, long in) {
    SafetensorsTensor tensor = weights.tensor(name);
    DType stored = tensor.dtype();
    float[] values = weights.readFloats(name, out, in);
    if (stored.isFloatingPoint()) {
      return values;
    }
    if (stored != DType.I8 && stored != DType.F8E4M3) {
      throw new ModelException("weight '" + name + "' is stored as " + stored + ", not a float");
    }
    String rowScale = LlamaTensors.weightScale(name);
    String blockScale = LlamaTensors.weightBlockScale(name);
    if (weights.contains(rowScale)) {
      scaleRows(values, readScale(weights, rowScale), name, out, in);
    } else if (weights.contains(blockScale)) {
      scaleBlocks(values, weights, blockScale, name, out, in);
    } else {
      throw new ModelException(
          "weight '" + name + "' is stored as " + stored + " but has no " + rowScale);
    }
    return values;
  }

  private static float[] readScale(SafetensorsModel weights, String name) {
    long[] shape = weights.tensor(name).shape();
    return weights.readFloats(name, shape);
  }

  /** One scale for the tensor, or one per output row. */
  private static void scaleRows(float[] values, float[] scale, String name, long out, long in) {
    if (scale.length != 1 && scale.length != out) {
      throw new ModelException(
          "weight '"
              + name
              + "' has "
              + scale.length
              + " scales; a quantized [out][in] weight needs 1 or "
              + out);
    }
    for (int row = 0; row < out; row++) {
      float s = scale.length == 1 ? scale[0] : scale[row];
      checkScale(s, name);
      for (int col = 0; col < in; col++) {
        values[(int) (row * in + col)] *= s;
      }
    }
  }

  /** Square blocks of a power-of-two size, inferred from the scale's shape. */
  private static void scaleBlocks(
      float[] values, SafetensorsModel weights, String scaleName, String name, long out, long in) {
    long[] shape = weights.tensor(scaleName).shape();
    if (shape.length != 2) {
      throw new ModelException(
          scaleName + " must be [out/block][in/block], got " + Arrays.toString(shape));
    }
    int block = blockSize(shape, out, in);
    if (block == 0) {
      throw new ModelException(
          scaleName + " of shape " + Arrays.toString(shape) + " fits no block size of " + name);
    }
    float[] scale = weights.readFloats(scaleName, shape);
    for (int row = 0; row < out; row++) {
      for (int col = 0; col < in; col++) {
        float s = scale[(int) ((row / block) * shape[1] + col / block)];
        checkScale(s, scaleName);
        values[(int) (row * in + col)] *= s;
      }
    }
  }

  static int blockSize(long[] scaleShape, long out, long in) {
    for (int block = 1; block <= 1 << 16; block <<= 1) {
      if (ceilDiv(out, block) == scaleShape[0] && ceilDiv(in, block) == scaleShape[1]) {
        return block;
      }
    }
    return 0;
  }

  private static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }

  private static void checkScale(float scale, String name) {
    if (!Float.isFinite(scale)) {
      throw new ModelException("weight scale " + name + " holds " + scale);
    }
  }
}
