package io.kiln.precision;

/**
 * The integer type of quantized activations. Both are the same symmetric grid (scale amax/127):
 * INT8 with zero point 0, as TensorRT requires, or UINT8 with zero point 128, the form ONNX
 * Runtime's x86 integer MatMul kernels take directly.
 */
public enum ActivationType {
  INT8,
  UINT8
}
