package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.engine.GpuProbe;
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
 * The CUDA device 0 through the bytedeco bindings: error checks for the runtime and driver APIs,
 * the primary context (made current on whichever thread launches), and memory figures.
 */
final class Cuda {
  private static CUctx_st context;
  private static String deviceName;
  private static int multiprocessors;
  private static int computeMajor;

  private Cuda() {}

  /** Initializes the driver and the primary context of device 0, once. */
  static synchronized void init() {
    if (context != null) {
      makeCurrent();
      return;
    }
    GpuProbe.cudaUnavailableReason()
        .ifPresent(
            reason -> {
              throw new BackendException("CUDA is not available: " + reason);
            });
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
      deviceName = prop.name().getString();
      multiprocessors = prop.multiProcessorCount();
      computeMajor = prop.major();
    }
    context = ctx;
  }

  /** The driver API needs the context current on the calling thread (engine threads differ). */
  static void makeCurrent() {
    checkDriver(cudart.cuCtxSetCurrent(context), "cuCtxSetCurrent");
  }

  static String deviceName() {
    return deviceName;
  }

  static int multiprocessors() {
    return multiprocessors;
  }

  /** Whether kernels may use programmatic dependent launch (compute capability 9.0 and later). */
  static boolean programmaticLaunchSupported() {
    return computeMajor >= 9;
  }

  /** {free, total} bytes of device memory. */
  static long[] memInfo() {
    try (SizeTPointer free = new SizeTPointer(1);
        SizeTPointer total = new SizeTPointer(1)) {
      check(cudart.cudaMemGetInfo(free, total), "cudaMemGetInfo");
      return new long[] {free.get(), total.get()};
    }
  }

  static void check(int err, String what) {
    if (err != cudart.cudaSuccess) {
      BytePointer msg = cudart.cudaGetErrorString(err);
      throw new BackendException(
          what + " failed: CUDA error " + err + (msg == null ? "" : " (" + msg.getString() + ")"));
    }
  }

  static void checkDriver(int result, String what) {
    if (result != cudart.CUDA_SUCCESS) {
      String text = "";
      try (PointerPointer<BytePointer> msg = new PointerPointer<>(1)) {
        if (cudart.cuGetErrorString(result, msg) == cudart.CUDA_SUCCESS) {
          BytePointer s = msg.get(BytePointer.class, 0);
          if (s != null && !s.isNull()) {
            text = " (" + s.getString() + ")";
          }
        }
      }
      throw new BackendException(what + " failed: CUDA driver error " + result + text);
    }
  }

  /** A JavaCPP pointer at a raw device address, for the bindings' pointer parameters. */
  static Pointer at(long address) {
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
  static double millisPerReplay(CUgraphExec_st graph, CUstream_st stream, int warmup, int reps) {
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
