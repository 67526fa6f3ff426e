package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.cuda.Cuda;
import org.bytedeco.cuda.cublas.cublasContext;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cublas;
import org.bytedeco.javacpp.FloatPointer;

/**
 * cuBLAS for the dense layers, on the runner's stream with a fixed workspace (so that captured
 * graphs never allocate). Inputs in the storage type, accumulation always in fp32.
 */
public final class Cublas implements AutoCloseable {
  static final long WORKSPACE_BYTES = 32L << 20;

  private final cublasContext handle = new cublasContext();
  private final DeviceBuffer workspace;
  private final FloatPointer one = new FloatPointer(1f);
  private final FloatPointer zero = new FloatPointer(0f);
  private boolean closed;

  public Cublas(CUstream_st stream) {
    check(cublas.cublasCreate_v2(handle), "cublasCreate");
    workspace = new DeviceBuffer(WORKSPACE_BYTES);
    check(cublas.cublasSetStream_v2(handle, stream), "cublasSetStream");
    check(
        cublas.cublasSetWorkspace_v2(handle, workspace.pointer(), WORKSPACE_BYTES),
        "cublasSetWorkspace");
    // Plain fp32 math for the fp32 mode (no TF32): exactness tests rely on it.
    check(cublas.cublasSetMathMode(handle, cublas.CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }

  /**
   * Row-major {@code y[rows][out] = x[rows][in] . w[out][in]^T} (the Hugging Face weight layout):
   * in column-major terms {@code y^T = w^T(op T) . x^T}.
   */
  public void linear(long y, int yType, long x, long w, int inType, int rows, int in, int out) {
    if (rows < 1 || in < 1 || out < 1) {
      throw new BackendException("gemm with shape " + rows + "x" + in + "x" + out);
    }
    check(
        cublas.cublasGemmEx(
            handle,
            cublas.CUBLAS_OP_T,
            cublas.CUBLAS_OP_N,
            out,
            rows,
            in,
            one,
            Cuda.at(w),
            inType,
            in,
            Cuda.at(x),
            inType,
            in,
            zero,
            Cuda.at(y),
            yType,
            out,
            cublas.CUBLAS_COMPUTE_32F,
            cublas.CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx " + rows + "x" + in + "x" + out);
  }

  private static void check(int status, String what) {
    if (status != cublas.CUBLAS_STATUS_SUCCESS) {
      throw new BackendException(what + " failed: cuBLAS status " + status);
    }
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      check(cublas.cublasDestroy_v2(handle), "cublasDestroy");
      workspace.close();
      one.close();
      zero.close();
    }
  }
}
