package io.kiln.model.safetensors;

import io.kiln.DType;
import java.util.Arrays;

/**
 * One tensor's entry in a safetensors header.
 *
 * @param dataOffset byte offset of the tensor's data from the start of the file
 */
public record SafetensorsTensor(
    String name, DType dtype, long[] shape, long dataOffset, long byteLength) {

  public long elementCount() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  @Override
  public String toString() {
    return name + " " + dtype.onnxName() + Arrays.toString(shape);
  }

  /** The safetensors spelling of a dtype, such as {@code BF16}. */
  static String headerName(DType dtype) {
    switch (dtype) {
      case F32:
        return "F32";
      case F16:
        return "F16";
      case BF16:
        return "BF16";
      case I8:
        return "I8";
      case F8E4M3:
        return "F8_E4M3";
      case I32:
        return "I32";
      case I64:
        return "I64";
      case BOOL:
        return "BOOL";
      default:
        throw new IllegalArgumentException(dtype.toString());
    }
  }

  /** Null for safetensors dtypes Kiln does not know (F64, U8, ...). */
  static DType fromHeaderName(String name) {
    switch (name) {
      case "F32":
        return DType.F32;
      case "F16":
        return DType.F16;
      case "BF16":
        return DType.BF16;
      case "I8":
        return DType.I8;
      case "F8_E4M3":
        return DType.F8E4M3;
      case "I32":
        return DType.I32;
      case "I64":
        return DType.I64;
      case "BOOL":
        return DType.BOOL;
      default:
        return null;
    }
  }
}
