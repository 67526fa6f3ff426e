package io.kiln.cuda;

import java.util.Optional;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Loader;

/** Finds out, without failing, whether a CUDA device and the TensorRT libraries can be used. */
public final class GpuProbe {
  private static Optional<String> cudaReason;
  private static Optional<String> tensorRtReason;

  private GpuProbe() {}

  /** Why no CUDA device can be used here, or empty when one can. */
  public static synchronized Optional<String> cudaUnavailableReason() {
    if (cudaReason == null) {
      cudaReason = probeCuda();
    }
    return cudaReason;
  }

  /** Why TensorRT cannot be used here (no CUDA device, or its libraries do not load). */
  public static synchronized Optional<String> tensorRtUnavailableReason() {
    if (tensorRtReason == null) {
      tensorRtReason = cudaUnavailableReason().or(GpuProbe::probeTensorRt);
    }
    return tensorRtReason;
  }

  private static Optional<String> probeCuda() {
    // Loading the CUDA bindings takes seconds; a host without the NVIDIA driver cannot use them.
    if (!java.nio.file.Files.exists(java.nio.file.Path.of("/dev/nvidiactl"))
        && !java.nio.file.Files.exists(java.nio.file.Path.of("/proc/driver/nvidia/version"))) {
      return Optional.of("no NVIDIA driver on this host");
    }
    try {
      Loader.load(cudart.class);
      try (IntPointer count = new IntPointer(1)) {
        int err = cudart.cudaGetDeviceCount(count);
        if (err != cudart.cudaSuccess) {
          return Optional.of("no CUDA device (" + cudart.cudaGetErrorString(err).getString() + ")");
        }
        return count.get() > 0 ? Optional.empty() : Optional.of("no CUDA device");
      }
    } catch (Throwable t) {
      return Optional.of("the CUDA runtime library does not load");
    }
  }

  private static Optional<String> probeTensorRt() {
    try {
      Loader.load(org.bytedeco.tensorrt.global.nvinfer.class);
      Loader.load(org.bytedeco.tensorrt.global.nvonnxparser.class);
      return Optional.empty();
    } catch (Throwable t) {
      return Optional.of("the TensorRT libraries do not load");
    }
  }
}
