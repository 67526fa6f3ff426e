package io.kiln.engine.trt;

import io.kiln.cuda.Cuda;

/**
 * Where an engine plan can run: a plan is only valid for the TensorRT version, CUDA runtime and GPU
 * (name and compute capability) it was built with.
 */
public record EngineTarget(
    String tensorrtVersion, String cudaVersion, String gpuName, String computeCapability) {

  /** The current process's TensorRT and device. */
  public static EngineTarget current() {
    Cuda.requireAvailable();
    return new EngineTarget(
        TrtLibrary.version(), Cuda.runtimeVersion(), Cuda.deviceName(), Cuda.computeCapability());
  }
}
