package io.kiln.engine.ort;

import static org.bytedeco.onnxruntime.global.onnxruntime.*;

import io.kiln.DType;
import io.kiln.ModelException;

/** Maps ONNX tensor element types to Kiln dtypes. */
final class OrtTypes {
  private OrtTypes() {}

  static int toOnnx(DType dtype) {
    return switch (dtype) {
      case F32 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
      case F16 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
      case BF16 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
      case I8 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
      case F8E4M3 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN;
      case I32 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
      case I64 -> ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
      case BOOL -> ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    };
  }

  static DType fromOnnx(int type, String tensorName) {
    if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      return DType.F32;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      return DType.F16;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16) {
      return DType.BF16;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) {
      return DType.I8;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN) {
      return DType.F8E4M3;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32) {
      return DType.I32;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
      return DType.I64;
    } else if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL) {
      return DType.BOOL;
    }
    throw new ModelException(
        "tensor '"
            + tensorName
            + "' has ONNX element type "
            + type
            + ", which Kiln does not support");
  }
}
