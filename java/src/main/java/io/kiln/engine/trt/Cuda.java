package io.kiln.engine.trt;

import static org.bytedeco.cuda.global.cudart.*;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.SizeTPointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Checked CUDA runtime calls and facts about the current device. */
public final class Cuda {
  private static final Logger LOG = LoggerFactory.getLogger(Cuda.class);
  private static volatile Boolean available;

  private Cuda() {}

  /** Throws a {@link BackendException} naming {@code what} unless {@code status} is success. */
  public static void check(int status, String what) {
    if (status != cudaSuccess) {
      String text;
      try {
        text = cudaGetErrorString(status).getString();
      } catch (RuntimeException e) {
        text = "error " + status;
      }
      throw new BackendException("CUDA " + what + " failed: " + text + " (" + status + ")");
    }
  }

  /** True when the CUDA runtime loads and sees at least one device; never throws. */
  public static boolean isAvailable() {
    Boolean a = available;
    if (a == null) {
      synchronized (Cuda.class) {
        if (available == null) {
          available = probe();
        }
        a = available;
      }
    }
    return a;
  }

  private static boolean probe() {
    try {
      Loader.load(org.bytedeco.cuda.global.cudart.class);
      int[] n = new int[1];
      int rc = cudaGetDeviceCount(n);
      if (rc != cudaSuccess || n[0] == 0) {
        LOG.debug("no CUDA device (status {}, count {})", rc, n[0]);
        return false;
      }
      return true;
    } catch (Throwable t) { // UnsatisfiedLinkError and friends when the libraries are absent
      LOG.debug("CUDA runtime not loadable: {}", t.toString());
      return false;
    }
  }

  public static void requireAvailable() {
    if (!isAvailable()) {
      throw new BackendException("no CUDA device or CUDA runtime library available");
    }
  }

  /** Free and total device memory in bytes. */
  public static long[] memInfo() {
    try (SizeTPointer free = new SizeTPointer(1);
        SizeTPointer total = new SizeTPointer(1)) {
      check(cudaMemGetInfo(free, total), "cudaMemGetInfo");
      return new long[] {free.get(), total.get()};
    }
  }

  public static String deviceName() {
    try (cudaDeviceProp p = new cudaDeviceProp()) {
      check(cudaGetDeviceProperties(p, currentDevice()), "cudaGetDeviceProperties");
      return p.name().getString().trim();
    }
  }

  /** Compute capability as {@code major.minor}, such as {@code 9.0}. */
  public static String computeCapability() {
    try (cudaDeviceProp p = new cudaDeviceProp()) {
      check(cudaGetDeviceProperties(p, currentDevice()), "cudaGetDeviceProperties");
      return p.major() + "." + p.minor();
    }
  }

  public static int currentDevice() {
    int[] d = new int[1];
    check(cudaGetDevice(d), "cudaGetDevice");
    return d[0];
  }

  /** The CUDA runtime version as {@code major.minor}. */
  public static String runtimeVersion() {
    int[] v = new int[1];
    check(cudaRuntimeGetVersion(v), "cudaRuntimeGetVersion");
    return (v[0] / 1000) + "." + (v[0] % 1000) / 10;
  }

  /** The newest CUDA version the driver supports, as {@code major.minor}. */
  public static String driverCudaVersion() {
    int[] v = new int[1];
    check(cudaDriverGetVersion(v), "cudaDriverGetVersion");
    return (v[0] / 1000) + "." + (v[0] % 1000) / 10;
  }
}
