package io.kiln.engine.trt;

import io.kiln.BackendException;
import io.kiln.cuda.Cuda;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.tensorrt.global.nvinfer;
import org.bytedeco.tensorrt.global.nvonnxparser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Loads the TensorRT libraries once and answers whether they are usable here. */
public final class TrtLibrary {
  private static final Logger LOG = LoggerFactory.getLogger(TrtLibrary.class);
  private static volatile String failure;
  private static volatile boolean loaded;

  private TrtLibrary() {}

  /** True when a CUDA device is present and TensorRT and its ONNX parser load; never throws. */
  public static boolean isAvailable() {
    if (!Cuda.isAvailable()) {
      return false;
    }
    try {
      load();
      return true;
    } catch (BackendException e) {
      LOG.debug("TensorRT not available: {}", e.getMessage());
      return false;
    }
  }

  static synchronized void load() {
    if (loaded) {
      return;
    }
    if (failure != null) {
      throw new BackendException(failure);
    }
    try {
      Loader.load(nvinfer.class);
      Loader.load(nvonnxparser.class);
      loaded = true;
    } catch (Throwable t) { // UnsatisfiedLinkError when libnvinfer is not installed
      failure = "TensorRT libraries cannot be loaded: " + t;
      throw new BackendException(failure, t);
    }
  }

  /** The linked TensorRT version, such as {@code 10.6.0}. */
  public static String version() {
    load();
    return nvinfer.getInferLibMajorVersion()
        + "."
        + nvinfer.getInferLibMinorVersion()
        + "."
        + nvinfer.getInferLibPatchVersion();
  }
}
