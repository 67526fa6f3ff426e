package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.CUfunc_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * One kernel of the module. Every launch checks the arguments against the kernel's signature and
 * the launch shape against the hardware limits before it reaches the driver, so a wrong call is an
 * exception, not a crash. Not thread-safe: the argument slots are reused.
 */
final class Kernel implements AutoCloseable {
  private static final int MAX_THREADS = 1024;
  private static final long MAX_GRID_X = (1L << 31) - 1;
  private static final int MAX_GRID_YZ = 65535;

  final String name;
  private final CUfunc_st function;
  private final String signature;
  private final BytePointer slots;
  private final PointerPointer<Pointer> params;

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
    checkShape(gridX, gridY, gridZ, blockX);
    pack(args);
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

  void checkShape(long gridX, int gridY, int gridZ, int blockX) {
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
  }
}
