package io.kiln.cuda;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.CUctx_st;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.cudart.cudaDeviceProp;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The one CUDA helper of Kiln: checked runtime and driver API calls, the primary context of device
 * 0 (made current on whichever thread launches), and facts about the device.
 */
public final class Cuda {
  private static CUctx_st context;
  private static int multiprocessors;
  private static int computeMajor;

  private Cuda() {}

  /** True when the CUDA runtime loads and sees at least one device; never throws. */
  public static boolean isAvailable() {
    return GpuProbe.cudaUnavailableReason().isEmpty();
  }

  public static void requireAvailable() {
    GpuProbe.cudaUnavailableReason()
        .ifPresent(
            reason -> {
              throw new BackendException("CUDA is not available: " + reason);
            });
  }

  /** Initializes the driver and the primary context of device 0, once; makes it current. */
  public static synchronized void init() {
    if (context != null) {
      makeCurrent();
      return;
    }
    requireAvailable();
    checkDriver(cudart.cuInit(0), "cuInit");
    check(cudart.cudaSetDevice(0), "cudaSetDevice");
    check(cudart.cudaFree(null), "creating the CUDA context");
    CUctx_st ctx = new CUctx_st();
    checkDriver(cudart.cuCtxGetCurrent(ctx), "cuCtxGetCurrent");
    if (ctx.isNull()) {
      throw new BackendException("no current CUDA context after cudaSetDevice(0)");
    }
    try (cudaDeviceProp prop = new cudaDeviceProp()) {
      check(cudart.cudaGetDeviceProperties(prop, 0), "cudaGetDeviceProperties");
      multiprocessors = prop.multiProcessorCount();
      computeMajor = prop.major();
    }
    context = ctx;
  }

  /** The driver API needs the context current on the calling thread (engine threads differ). */
  public static void makeCurrent() {
    checkDriver(cudart.cuCtxSetCurrent(context), "cuCtxSetCurrent");
  }

  /** Streaming multiprocessors of device 0; valid after {@link #init}. */
  public static int multiprocessors() {
    return multiprocessors;
  }

  /** Whether kernels may use programmatic dependent launch (compute capability 9.0 and later). */
  public static boolean programmaticLaunchSupported() {
    return computeMajor >= 9;
  }

  /** Throws a {@link BackendException} naming {@code what} unless {@code status} is success. */
  public static void check(int status, String what) {
    if (status != cudart.cudaSuccess) {
      String text;
      try {
        BytePointer message = cudart.cudaGetErrorString(status);
        text = message == null ? "error " + status : message.getString();
      } catch (RuntimeException e) {
        text = "error " + status;
      }
      throw new BackendException("CUDA " + what + " failed: " + text + " (" + status + ")");
    }
  }

  /** The same for the driver API's results. */
  public static void checkDriver(int result, String what) {
    if (result != cudart.CUDA_SUCCESS) {
      String text = "";
      try (PointerPointer<BytePointer> message = new PointerPointer<>(1)) {
        if (cudart.cuGetErrorString(result, message) == cudart.CUDA_SUCCESS) {
          BytePointer s = message.get(BytePointer.class, 0);
          if (s != null && !s.isNull()) {
            text = " (" + s.getString() + ")";
          }
        }
      }
      throw new BackendException(what + " failed: CUDA driver error " + result + text);
    }
  }

  /** Free and total device memory in bytes. */
  public static long[] memInfo() {
    try (SizeTPointer free = new SizeTPointer(1);
        SizeTPointer total = new SizeTPointer(1)) {
      check(cudart.cudaMemGetInfo(free, total), "cudaMemGetInfo");
      return new long[] {free.get(), total.get()};
    }
  }

  public static String deviceName() {
    try (cudaDeviceProp p = new cudaDeviceProp()) {
      check(cudart.cudaGetDeviceProperties(p, currentDevice()), "cudaGetDeviceProperties");
      return p.name().getString().trim();
    }
  }

  /** Compute capability as {@code major.minor}, such as {@code 9.0}. */
  public static String computeCapability() {
    try (cudaDeviceProp p = new cudaDeviceProp()) {
      check(cudart.cudaGetDeviceProperties(p, currentDevice()), "cudaGetDeviceProperties");
      return p.major() + "." + p.minor();
    }
  }

  public static int currentDevice() {
    int[] d = new int[1];
    check(cudart.cudaGetDevice(d), "cudaGetDevice");
    return d[0];
  }

  /** The CUDA runtime version as {@code major.minor}. */
  public static String runtimeVersion() {
    int[] v = new int[1];
    check(cudart.cudaRuntimeGetVersion(v), "cudaRuntimeGetVersion");
    return (v[0] / 1000) + "." + (v[0] % 1000) / 10;
  }

  /** The newest CUDA version the driver supports, as {@code major.minor}. */
  public static String driverCudaVersion() {
    int[] v = new int[1];
    check(cudart.cudaDriverGetVersion(v), "cudaDriverGetVersion");
    return (v[0] / 1000) + "." + (v[0] % 1000) / 10;
  }

  /** A JavaCPP pointer at a raw device address, for the bindings' pointer parameters. */
  public static Pointer at(long address) {
    return new RawPointer(address);
  }

  private static final class RawPointer extends Pointer {
    RawPointer(long address) {
      this.address = address;
    }
  }

  /**
   * Launches {@code graph} {@code warmup} times, then {@code reps} times back to back between two
   * events; returns device milliseconds per replay.
   */
  public static double millisPerReplay(
      CUgraphExec_st graph, CUstream_st stream, int warmup, int reps) {
    CUevent_st start = new CUevent_st();
    CUevent_st stop = new CUevent_st();
    check(cudart.cudaEventCreate(start), "cudaEventCreate");
    check(cudart.cudaEventCreate(stop), "cudaEventCreate");
    try {
      for (int i = 0; i < warmup; i++) {
        check(cudart.cudaGraphLaunch(graph, stream), "cudaGraphLaunch");
      }
      check(cudart.cudaEventRecord(start, stream), "cudaEventRecord");
      for (int i = 0; i < reps; i++) {
        check(cudart.cudaGraphLaunch(graph, stream), "cudaGraphLaunch");
      }
      check(cudart.cudaEventRecord(stop, stream), "cudaEventRecord");
      check(cudart.cudaEventSynchronize(stop), "cudaEventSynchronize");
      float[] ms = new float[1];
      check(cudart.cudaEventElapsedTime(ms, start, stop), "cudaEventElapsedTime");
      return ms[0] / reps;
    } finally {
      cudart.cudaEventDestroy(start);
      cudart.cudaEventDestroy(stop);
    }
  }
}
