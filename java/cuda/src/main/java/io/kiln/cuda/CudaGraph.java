package io.kiln.cuda;

import static org.bytedeco.cuda.global.cudart.*;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * A CUDA graph captured from work enqueued on a stream. Capture runs in thread-local mode, so other
 * threads' CUDA calls do not break it; the stream must be a non-blocking stream.
 */
public final class CudaGraph implements ReplayableGraph {
  private final CUstream_st stream;
  private CUgraph_st graph;
  private CUgraphExec_st exec;
  private final long memoryBytes;

  private CudaGraph(CUstream_st stream, CUgraph_st graph, CUgraphExec_st exec, long memoryBytes) {
    this.stream = stream;
    this.graph = graph;
    this.exec = exec;
    this.memoryBytes = memoryBytes;
  }

  /** Captures what {@code enqueue} puts on {@code stream} and instantiates it. */
  public static CudaGraph capture(CUstream_st stream, Runnable enqueue) {
    long freeBefore = Cuda.memInfo()[0];
    Cuda.check(
        cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    CUgraph_st graph = new CUgraph_st();
    try {
      enqueue.run();
    } catch (RuntimeException e) {
      // End the capture so the stream is usable again; the partial graph is dropped.
      if (cudaStreamEndCapture(stream, graph) == cudaSuccess && !graph.isNull()) {
        cudaGraphDestroy(graph);
      }
      throw e;
    }
    Cuda.check(cudaStreamEndCapture(stream, graph), "cudaStreamEndCapture");
    if (graph.isNull()) {
      throw new BackendException("stream capture produced no graph");
    }
    CUgraphExec_st exec = new CUgraphExec_st();
    int rc = cudaGraphInstantiate(exec, graph, 0L);
    if (rc != cudaSuccess) {
      cudaGraphDestroy(graph);
      Cuda.check(rc, "cudaGraphInstantiate");
    }
    long used = Math.max(0, freeBefore - Cuda.memInfo()[0]);
    return new CudaGraph(stream, graph, exec, used);
  }

  @Override
  public void launch() {
    if (exec == null) {
      throw new IllegalStateException("graph is closed");
    }
    Cuda.check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
  }

  @Override
  public long memoryBytes() {
    return memoryBytes;
  }

  @Override
  public void close() {
    if (exec != null) {
      cudaGraphExecDestroy(exec);
      cudaGraphDestroy(graph);
      exec = null;
      graph = null;
    }
  }
}
