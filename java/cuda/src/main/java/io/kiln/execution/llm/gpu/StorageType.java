package io.kiln.execution.llm.gpu;

import org.bytedeco.cuda.global.cudart;

/** How weights, activations and the KV cache are stored on the device; math is fp32 either way. */
public enum StorageType {
  F16(2, "f16", cudart.CUDA_R_16F),
  F32(4, "f32", cudart.CUDA_R_32F);

  final int bytes;
  final String suffix;
  public final int cudaType;

  StorageType(int bytes, String suffix, int cudaType) {
    this.bytes = bytes;
    this.suffix = suffix;
    this.cudaType = cudaType;
  }
}
