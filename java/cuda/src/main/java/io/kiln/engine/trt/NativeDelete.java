package io.kiln.engine.trt;

import io.kiln.BackendException;
import java.lang.reflect.Method;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.bytedeco.javacpp.Pointer;

/**
 * Gives TensorRT objects returned by factory calls a working {@code deallocate()}.
 *
 * <p>TensorRT 10 dropped {@code destroy()}; the objects must be freed with C++ {@code delete}, and
 * the JavaCPP bindings attach no deallocator to pointers that native code returns. Every TensorRT
 * interface class has a virtual destructor, so the {@code delete} function that JavaCPP generates
 * for an instance allocated from Java frees any object of that class. We read that function's
 * address from one throwaway instance per class and attach it to the returned pointer.
 */
final class NativeDelete {
  private static final Map<Class<?>, Long> DELETERS = new ConcurrentHashMap<>();

  private NativeDelete() {}

  /** Makes {@code deallocate()} on {@code p} run C++ {@code delete}; returns {@code p}. */
  static <P extends Pointer> P own(P p, Supplier<? extends Pointer> template) {
    if (p == null || p.isNull()) {
      return p;
    }
    long deleter = DELETERS.computeIfAbsent(p.getClass(), c -> deleterOf(template.get()));
    try {
      Method init =
          Pointer.class.getDeclaredMethod("init", long.class, long.class, long.class, long.class);
      init.setAccessible(true);
      init.invoke(p, p.address(), 0L, p.address(), deleter);
    } catch (ReflectiveOperationException e) {
      throw new BackendException(
          "cannot attach a native deleter to " + p.getClass().getSimpleName(), e);
    }
    return p;
  }

  /** Frees {@code p} now (no-op for null), in the caller's order. */
  static void delete(Pointer p) {
    if (p != null && !p.isNull()) {
      p.deallocate();
      p.setNull();
    }
  }

  private static long deleterOf(Pointer template) {
    try {
      java.lang.reflect.Field f = Pointer.class.getDeclaredField("deallocator");
      f.setAccessible(true);
      Object d = f.get(template);
      Class<?> nativeDeallocator = Class.forName("org.bytedeco.javacpp.Pointer$NativeDeallocator");
      if (d != null && !nativeDeallocator.isInstance(d)) {
        java.lang.reflect.Field inner =
            Class.forName("org.bytedeco.javacpp.Pointer$DeallocatorReference")
                .getDeclaredField("deallocator");
        inner.setAccessible(true);
        d = inner.get(d);
      }
      if (!nativeDeallocator.isInstance(d)) {
        throw new BackendException("no native deleter for " + template.getClass().getSimpleName());
      }
      Method a = nativeDeallocator.getDeclaredMethod("deallocatorAddress");
      a.setAccessible(true);
      long address = (Long) a.invoke(d);
      if (address == 0) {
        throw new BackendException("no native deleter for " + template.getClass().getSimpleName());
      }
      template.deallocate();
      return address;
    } catch (ReflectiveOperationException e) {
      throw new BackendException("cannot read the native deleter of " + template.getClass(), e);
    }
  }
}
