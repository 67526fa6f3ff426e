package io.kiln.cuda;

import static org.bytedeco.cuda.global.cudart.*;

import io.kiln.BackendException;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * A CUDA graph captured from work enqueued on a stream. Capture runs in thread-local mode, so other
 * threads' CUDA calls do not break it; the stream must not be the legacy default stream. Only the
 * instantiated graph is kept: the captured template is destroyed once instantiated.
 */
public final class CudaGraph implements ReplayableGraph {
  private final CUstream_st stream;
  private CUgraphExec_st exec;
  private final long memoryBytes;

  private CudaGraph(CUstream_st stream, CUgraphExec_st exec, long memoryBytes) {
    this.stream = stream;
    this.exec = exec;
    this.memoryBytes = memoryBytes;
  }

  /**
   * Captures what {@code enqueue} puts on {@code stream} and instantiates it (no instantiate
   * flags). If {@code enqueue} throws, the capture is ended, its partial graph dropped and the
   * exception rethrown, so the stream is usable again.
   */
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
    int instantiated = cudaGraphInstantiate(exec, graph, 0L);
    int destroyed = cudaGraphDestroy(graph);
    Cuda.check(instantiated, "cudaGraphInstantiate");
    Cuda.check(destroyed, "cudaGraphDestroy");
    long used = Math.max(0, freeBefore - Cuda.memInfo()[0]);
    return new CudaGraph(stream, exec, used);
  }

  @Override
  public void launch() {
    Cuda.check(cudaGraphLaunch(exec(), stream), "cudaGraphLaunch");
  }

  /**
   * Launches the graph {@code warmup} times, then {@code reps} times back to back between two
   * events on its stream; returns device milliseconds per replay (see {@link
   * Cuda#millisPerReplay}).
   */
  public double millisPerReplay(int warmup, int reps) {
    return Cuda.millisPerReplay(exec(), stream, warmup, reps);
  }

  private CUgraphExec_st exec() {
    if (exec == null) {
      throw new IllegalStateException("graph is closed");
    }
    return exec;
  }

  @Override
  public long memoryBytes() {
    return memoryBytes;
  }

  @Override
  public void close() {
    if (exec != null) {
      cudaGraphExecDestroy(exec);
      exec = null;
    }
  }
}
