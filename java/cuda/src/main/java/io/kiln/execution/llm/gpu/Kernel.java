package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.cuda.Cuda;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUlaunchAttribute;
import org.bytedeco.cuda.cudart.CUlaunchConfig;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * One kernel of the module, launched through the typed methods of its wrapper ({@link Kernels}):
 * the arguments travel as a list checked against a signature string private to the wrapper. Every
 * launch checks the arguments against the kernel's signature and the launch shape against the
 * hardware limits before it reaches the driver, so a wrong call is an exception, not a crash. Not
 * thread-safe: the argument slots are reused.
 *
 * <p>With {@link #overlapPrevious} on, launches carry the programmatic stream serialization
 * attribute (sm_90+): the kernel may start while the previous one in the stream finishes, and waits
 * for it in {@code grid_dependency_sync} before it reads activations.
 */
final class Kernel implements AutoCloseable {
  private static final int MAX_THREADS = 1024;
  private static final long MAX_GRID_X = (1L << 31) - 1;
  private static final int MAX_GRID_YZ = 65535;

  /** Size of the driver's {@code CUlaunchAttribute}, checked against the bindings at first use. */
  static final int ATTRIBUTE_BYTES = 72;

  final String name;
  private final CUfunc_st function;
  private final String signature;
  private final BytePointer slots;
  private final PointerPointer<Pointer> params;
  private BytePointer attribute;
  private CUlaunchAttribute attributeView;
  private CUlaunchConfig config;
  private boolean overlapped;

  Kernel(String name, CUfunc_st function, String signature) {
    for (char c : signature.toCharArray()) {
      if ("pilf".indexOf(c) < 0) {
        throw new IllegalArgumentException("signature letter '" + c + "' of " + name);
      }
    }
    this.name = name;
    this.function = function;
    this.signature = signature;
    int n = signature.length();
    this.slots = new BytePointer(8L * Math.max(1, n));
    this.params = new PointerPointer<>(Math.max(1, n));
    for (int i = 0; i < n; i++) {
      params.put(i, Cuda.at(slots.address() + 8L * i));
    }
  }

  /**
   * Whether later launches may overlap the previous kernel of their stream. Every kernel in
   * llm_kernels.cu calls {@code grid_dependency_sync} before it touches activations, so this is
   * safe for all of them.
   */
  void overlapPrevious(boolean on) {
    overlapped = on;
    if (on && attribute == null) {
      long size = Loader.sizeof(CUlaunchAttribute.class);
      if (size != ATTRIBUTE_BYTES) {
        throw new BackendException(
            "CUlaunchAttribute is " + size + " bytes here, " + ATTRIBUTE_BYTES + " expected");
      }
      attribute = programmaticSerializationAttribute();
      attributeView = new CUlaunchAttribute(attribute);
      config = new CUlaunchConfig();
    }
  }

  /**
   * A {@code CUlaunchAttribute} that allows programmatic stream serialization, written byte by
   * byte: {@code id} (4 bytes), 4 bytes of padding, then the value union, whose first int is the
   * flag; 72 bytes in all.
   */
  static BytePointer programmaticSerializationAttribute() {
    BytePointer a = new BytePointer(ATTRIBUTE_BYTES);
    a.fill(0);
    a.putInt(0, cudart.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
    a.putInt(8, 1);
    return a;
  }

  /** Launches on {@code stream} with a 1-D grid covering {@code count} threads. */
  void launch1d(CUstream_st stream, long count, int threads, Object... args) {
    if (count <= 0) {
      return;
    }
    launch(stream, (count + threads - 1) / threads, 1, 1, threads, 0, args);
  }

  void launch(
      CUstream_st stream,
      long gridX,
      int gridY,
      int gridZ,
      int blockX,
      int sharedBytes,
      Object... args) {
    checkShape(name, gridX, gridY, gridZ, blockX);
    pack(args);
    if (overlapped) {
      config
          .gridDimX((int) gridX)
          .gridDimY(gridY)
          .gridDimZ(gridZ)
          .blockDimX(blockX)
          .blockDimY(1)
          .blockDimZ(1)
          .sharedMemBytes(sharedBytes)
          .hStream(stream)
          .attrs(attributeView)
          .numAttrs(1);
      Cuda.checkDriver(
          cudart.cuLaunchKernelEx(config, function, params, (PointerPointer<?>) null),
          "programmatic launch of " + name);
      return;
    }
    Cuda.checkDriver(
        cudart.cuLaunchKernel(
            function,
            (int) gridX,
            gridY,
            gridZ,
            blockX,
            1,
            1,
            sharedBytes,
            stream,
            params,
            (PointerPointer<?>) null),
        "launch of " + name);
  }

  /** Pure check, so it can be tested without a device. */
  static void checkShape(String name, long gridX, int gridY, int gridZ, int blockX) {
    if (gridX < 1 || gridX > MAX_GRID_X || gridY < 1 || gridY > MAX_GRID_YZ) {
      throw new BackendException(
          name + ": grid " + gridX + "x" + gridY + "x" + gridZ + " outside the device limits");
    }
    if (gridZ < 1 || gridZ > MAX_GRID_YZ || blockX < 1 || blockX > MAX_THREADS) {
      throw new BackendException(
          name + ": grid z " + gridZ + " or block of " + blockX + " threads outside the limits");
    }
  }

  /** Checks the arguments against the signature and writes them into the parameter slots. */
  void pack(Object... args) {
    checkArguments(name, signature, args);
    for (int i = 0; i < args.length; i++) {
      long at = 8L * i;
      switch (signature.charAt(i)) {
        case 'p', 'l' -> slots.putLong(at, (Long) args[i]);
        case 'i' -> slots.putInt(at, (Integer) args[i]);
        case 'f' -> slots.putFloat(at, (Float) args[i]);
        default -> throw new IllegalStateException();
      }
    }
  }

  /** Pure check, so it can be tested without a device. */
  static void checkArguments(String name, String signature, Object... args) {
    if (args.length != signature.length()) {
      throw new BackendException(
          name + " takes " + signature.length() + " arguments, got " + args.length);
    }
    for (int i = 0; i < args.length; i++) {
      Object a = args[i];
      char kind = signature.charAt(i);
      boolean ok =
          switch (kind) {
            case 'p' -> a instanceof Long p && p != 0L;
            case 'l' -> a instanceof Long;
            case 'i' -> a instanceof Integer;
            case 'f' -> a instanceof Float f && !f.isNaN();
            default -> false;
          };
      if (!ok) {
        throw new BackendException(
            name
                + ": argument "
                + i
                + " must be "
                + switch (kind) {
                  case 'p' -> "a non-null device pointer (long)";
                  case 'l' -> "a long";
                  case 'i' -> "an int";
                  default -> "a float";
                }
                + ", got "
                + (a == null ? "null" : a.getClass().getSimpleName() + " " + a));
      }
    }
  }

  @Override
  public void close() {
    params.close();
    slots.close();
    if (config != null) {
      config.close();
      attribute.close();
    }
  }
}
