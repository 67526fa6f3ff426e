package io.kiln.cuda;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Captured graphs per key (a bucket on one execution context), least recently used first out once
 * more than {@code maxGraphs} are held. A capture that fails is remembered, logged once, and that
 * key runs by plain enqueue from then on. Not thread-safe: one cache belongs to one stream.
 */
public final class GraphCache<K> implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(GraphCache.class);
  private final int maxGraphs;
  private final LinkedHashMap<K, ReplayableGraph> graphs;
  private final Map<K, String> failed = new java.util.HashMap<>();
  private long captures;
  private long replays;
  private long hits;
  private long misses;
  private long fallbacks;
  private long evictions;
  private long evictedBytes;

  public GraphCache(int maxGraphs) {
    if (maxGraphs < 1) {
      throw new IllegalArgumentException("maxGraphs must be >= 1");
    }
    this.maxGraphs = maxGraphs;
    this.graphs = new LinkedHashMap<>(16, 0.75f, true);
  }

  /** True when {@code key} has a graph ready. */
  public boolean contains(K key) {
    return graphs.containsKey(key);
  }

  /**
   * Runs the work for {@code key}: replays its graph, or captures one first with {@code capture};
   * when capturing fails (now or before), runs {@code enqueue} instead.
   */
  public void run(K key, Supplier<ReplayableGraph> capture, Runnable enqueue) {
    ReplayableGraph g = graphs.get(key);
    if (g != null) {
      hits++;
    } else {
      misses++;
      if (failed.containsKey(key)) {
        fallbacks++;
        enqueue.run();
        return;
      }
      try {
        g = capture.get();
      } catch (RuntimeException e) {
        failed.put(key, e.getMessage());
        LOG.warn("CUDA graph capture failed for {}; using plain enqueue: {}", key, e.getMessage());
        fallbacks++;
        enqueue.run();
        return;
      }
      captures++;
      graphs.put(key, g);
      evictBeyondBound();
    }
    g.launch();
    replays++;
  }

  /** Captures {@code key} now if it has no graph yet (eager capture of a configured list). */
  public void prepare(K key, Supplier<ReplayableGraph> capture) {
    if (graphs.containsKey(key) || failed.containsKey(key)) {
      return;
    }
    try {
      graphs.put(key, capture.get());
      captures++;
      evictBeyondBound();
    } catch (RuntimeException e) {
      failed.put(key, e.getMessage());
      LOG.warn("CUDA graph capture failed for {}; using plain enqueue: {}", key, e.getMessage());
    }
  }

  private void evictBeyondBound() {
    while (graphs.size() > maxGraphs) {
      Map.Entry<K, ReplayableGraph> eldest = graphs.entrySet().iterator().next();
      graphs.remove(eldest.getKey());
      evictedBytes += eldest.getValue().memoryBytes();
      eldest.getValue().close();
      evictions++;
    }
  }

  public GraphStats stats() {
    long bytes = 0;
    for (ReplayableGraph g : graphs.values()) {
      bytes += g.memoryBytes();
    }
    return new GraphStats(
        captures, replays, hits, misses, fallbacks, evictions, bytes, graphs.size());
  }

  /** Drops every graph (and the memory of failed captures). */
  public void clear() {
    for (ReplayableGraph g : graphs.values()) {
      g.close();
    }
    graphs.clear();
    failed.clear();
  }

  @Override
  public void close() {
    clear();
  }
}
