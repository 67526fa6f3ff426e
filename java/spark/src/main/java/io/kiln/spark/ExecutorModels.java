package io.kiln.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The models of one executor JVM: each opened on first use, shared by every task and partition
 * after that, and closed when the executor stops (plugin) or the JVM exits (shutdown hook).
 */
public final class ExecutorModels {
  private static final Logger LOG = LoggerFactory.getLogger(ExecutorModels.class);
  private static final Map<ModelKey, AutoCloseable> OPEN = new ConcurrentHashMap<>();
  private static final AtomicInteger OPENED = new AtomicInteger();

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(ExecutorModels::closeAll, "kiln-models-close"));
  }

  private ExecutorModels() {}

  /**
   * What tells one model instance from another: the kind, where it is, where it runs and every
   * option that changes how it is opened.
   */
  public record ModelKey(String kind, String path, String device, List<String> options) {
    public ModelKey {
      options = List.copyOf(options);
    }
  }

  /** The model for {@code key}, opened by {@code open} if this JVM has none yet. */
  @SuppressWarnings("unchecked")
  static <T extends AutoCloseable> T get(ModelKey key, Supplier<T> open) {
    return (T)
        OPEN.computeIfAbsent(
            key,
            k -> {
              T model = open.get();
              OPENED.incrementAndGet();
              LOG.info("opened {} {} on {}", k.kind(), k.path(), k.device());
              return model;
            });
  }

  /** How many models this JVM has opened so far (reuse keeps it flat). */
  public static int openedCount() {
    return OPENED.get();
  }

  /** How many models are open now. */
  public static int openCount() {
    return OPEN.size();
  }

  /** Closes every open model; the next use opens it again. */
  public static synchronized void closeAll() {
    List<ModelKey> keys = new ArrayList<>(OPEN.keySet());
    for (ModelKey key : keys) {
      AutoCloseable model = OPEN.remove(key);
      if (model == null) {
        continue;
      }
      try {
        model.close();
      } catch (Exception e) {
        LOG.warn("closing {} {}: {}", key.kind(), key.path(), e.toString());
      }
    }
  }
}
