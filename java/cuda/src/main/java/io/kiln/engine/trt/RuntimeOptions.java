package io.kiln.engine.trt;

import io.kiln.InvalidInputException;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.ShapeBuckets;
import java.util.List;

/**
 * How a loaded engine runs.
 *
 * @param cudaGraphs replay a captured CUDA graph per bucket instead of enqueueing each time
 * @param streams execution slots (stream + contexts) that may run at once
 * @param buckets padded shapes; null derives them from the plan's profiles
 * @param maxGraphs LRU bound on captured graphs per slot
 * @param eagerCapture buckets captured when the engine opens instead of on first use
 */
public record RuntimeOptions(
    boolean cudaGraphs,
    int streams,
    ShapeBuckets buckets,
    int maxGraphs,
    List<Bucket> eagerCapture) {
  public RuntimeOptions {
    if (streams < 1) {
      throw new InvalidInputException("streams must be >= 1");
    }
    if (maxGraphs < 1) {
      throw new InvalidInputException("maxGraphs must be >= 1");
    }
    eagerCapture = List.copyOf(eagerCapture);
  }

  public static RuntimeOptions defaults() {
    return new RuntimeOptions(true, 1, null, 64, List.of());
  }

  public RuntimeOptions withCudaGraphs(boolean on) {
    return new RuntimeOptions(on, streams, buckets, maxGraphs, eagerCapture);
  }

  public RuntimeOptions withStreams(int n) {
    return new RuntimeOptions(cudaGraphs, n, buckets, maxGraphs, eagerCapture);
  }

  public RuntimeOptions withBuckets(ShapeBuckets b) {
    return new RuntimeOptions(cudaGraphs, streams, b, maxGraphs, eagerCapture);
  }

  public RuntimeOptions withMaxGraphs(int n) {
    return new RuntimeOptions(cudaGraphs, streams, buckets, n, eagerCapture);
  }

  public RuntimeOptions withEagerCapture(List<Bucket> list) {
    return new RuntimeOptions(cudaGraphs, streams, buckets, maxGraphs, list);
  }
}
