package io.kiln.engine.trt;

import static org.bytedeco.cuda.global.cudart.*;

import io.kiln.cuda.Bucket;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.GraphCache;
import io.kiln.cuda.GraphStats;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.tensorrt.nvinfer.ICudaEngine;

/**
 * What one concurrent caller uses: a non-blocking stream, TensorRT scratch memory shared by this
 * slot's contexts (they never run at once), a context per bucket and the captured graphs.
 */
final class ExecutionSlot implements AutoCloseable {
  final CUstream_st stream = new CUstream_st();
  private final Pointer scratch = new Pointer();
  private final long scratchBytes;
  private final Map<Bucket, BucketContext> contexts = new HashMap<>();
  final GraphCache<Bucket> graphs;

  ExecutionSlot(ICudaEngine engine, int maxGraphs) {
    Cuda.check(
        cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    scratchBytes = Math.max(1, engine.getDeviceMemorySizeV2());
    int rc = cudaMalloc(scratch, scratchBytes);
    if (rc != cudaSuccess) {
      cudaStreamDestroy(stream);
      Cuda.check(rc, "cudaMalloc (TensorRT scratch, " + scratchBytes + " bytes)");
    }
    graphs = new GraphCache<>(maxGraphs);
  }

  BucketContext context(ICudaEngine engine, List<IoTensor> tensors, Bucket bucket, int profile) {
    BucketContext c = contexts.get(bucket);
    if (c == null) {
      c = new BucketContext(engine, tensors, bucket, profile, stream, scratch, scratchBytes);
      contexts.put(bucket, c);
    }
    return c;
  }

  GraphStats stats() {
    return graphs.stats();
  }

  long deviceBytes() {
    long n = scratchBytes;
    for (BucketContext c : contexts.values()) {
      n += c.deviceBytes();
    }
    return n;
  }

  void clearGraphs() {
    graphs.clear();
  }

  @Override
  public void close() {
    cudaStreamSynchronize(stream);
    graphs.close();
    for (BucketContext c : contexts.values()) {
      c.close();
    }
    contexts.clear();
    cudaFree(scratch);
    cudaStreamDestroy(stream);
  }
}
