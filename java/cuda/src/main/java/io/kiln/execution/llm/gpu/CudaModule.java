package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.cuda.Cuda;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUmod_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;

/**
 * A kernel fatbin on the classpath (the runner's, {@link #RESOURCE}, is embedded in the jar),
 * loaded with the driver API ({@code cuModuleLoadData}) so that no second CUDA runtime enters the
 * process. Unloading frees the module's device memory.
 */
public final class CudaModule implements AutoCloseable {
  static final String RESOURCE = "/io/kiln/native/llm_kernels.fatbin";

  private final CUmod_st module;
  private final String resource;
  private final Map<String, Kernel> kernels = new HashMap<>();
  private boolean closed;

  private CudaModule(CUmod_st module, String resource) {
    this.module = module;
    this.resource = resource;
  }

  /** True when the build embedded the fatbin (it needs nvcc at build time). */
  static boolean kernelsBuilt() {
    return kernelsBuilt(RESOURCE);
  }

  static boolean kernelsBuilt(String resource) {
    return CudaModule.class.getResource(resource) != null;
  }

  /** The runner's kernels. */
  public static CudaModule load() {
    return load(RESOURCE);
  }

  /** The fatbin at {@code resource} on the classpath. */
  static CudaModule load(String resource) {
    byte[] image;
    try (InputStream in = CudaModule.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new BackendException(
            "CUDA kernels not built: "
                + resource
                + " is not on the classpath (build with nvcc and cmake on the PATH)");
      }
      image = in.readAllBytes();
    } catch (IOException e) {
      throw new BackendException("cannot read " + resource + ": " + e.getMessage(), e);
    }
    Cuda.init();
    CUmod_st module = new CUmod_st();
    try (BytePointer data = new BytePointer(image)) {
      Cuda.checkDriver(cudart.cuModuleLoadData(module, data), "cuModuleLoadData(" + resource + ")");
    }
    return new CudaModule(module, resource);
  }

  /**
   * The kernel {@code name} with its argument signature: one letter per parameter, {@code p} a
   * device pointer, {@code i} an int, {@code l} a 64-bit integer, {@code f} a float.
   */
  Kernel kernel(String name, String signature) {
    if (closed) {
      throw new IllegalStateException("module closed");
    }
    return kernels.computeIfAbsent(
        name,
        n -> {
          CUfunc_st function = new CUfunc_st();
          Cuda.checkDriver(
              cudart.cuModuleGetFunction(function, module, n), "kernel " + n + " of " + resource);
          return new Kernel(n, function, signature);
        });
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      kernels.values().forEach(Kernel::close);
      kernels.clear();
      Cuda.checkDriver(cudart.cuModuleUnload(module), "cuModuleUnload");
    }
  }
}
