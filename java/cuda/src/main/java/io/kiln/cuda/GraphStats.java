package io.kiln.cuda;

/**
 * Counters of a graph cache.
 *
 * @param captures graphs captured and instantiated
 * @param replays graph launches
 * @param hits requests whose bucket already had a graph
 * @param misses requests that had to capture first (or fall back)
 * @param fallbacks requests run by a plain enqueue because capture failed
 * @param evictions graphs dropped by the LRU bound
 * @param graphMemoryBytes device memory the live graphs took when instantiated
 * @param live graphs currently held
 */
public record GraphStats(
    long captures,
    long replays,
    long hits,
    long misses,
    long fallbacks,
    long evictions,
    long graphMemoryBytes,
    int live) {

  public GraphStats plus(GraphStats o) {
    return new GraphStats(
        captures + o.captures,
        replays + o.replays,
        hits + o.hits,
        misses + o.misses,
        fallbacks + o.fallbacks,
        evictions + o.evictions,
        graphMemoryBytes + o.graphMemoryBytes,
        live + o.live);
  }

  public static GraphStats empty() {
    return new GraphStats(0, 0, 0, 0, 0, 0, 0, 0);
  }
}
