package io.kiln.engine.trt;

import static org.bytedeco.cuda.global.cudart.*;

import io.kiln.BackendException;
import io.kiln.Tensor;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.CudaGraph;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.tensorrt.global.nvinfer.ExecutionContextAllocationStrategy;
import org.bytedeco.tensorrt.nvinfer.ICudaEngine;
import org.bytedeco.tensorrt.nvinfer.IExecutionContext;

/**
 * One execution context fixed to one bucket shape: its input shapes and tensor addresses are set
 * once, so a graph captured from it stays valid for as long as it lives. Device buffers for every
 * input and output, and pinned host staging for the inputs, are allocated here, once.
 */
final class BucketContext implements AutoCloseable {
  final Bucket bucket;
  final int profile;
  private final IExecutionContext context;
  private final CUstream_st stream;
  final Map<String, BucketBuffer> buffers = new LinkedHashMap<>();

  @SuppressWarnings("deprecation") // allInputShapesSpecified: the check we want here
  BucketContext(
      ICudaEngine engine,
      List<IoTensor> tensors,
      Bucket bucket,
      int profile,
      CUstream_st stream,
      Pointer scratch,
      long scratchBytes) {
    this.bucket = bucket;
    this.profile = profile;
    this.stream = stream;
    this.context =
        NativeDelete.own(
            engine.createExecutionContext(ExecutionContextAllocationStrategy.kUSER_MANAGED),
            IExecutionContext::new);
    if (context == null || context.isNull()) {
      throw new BackendException("TensorRT could not create an execution context; see its log");
    }
    try {
      context.setDeviceMemoryV2(scratch, scratchBytes);
      if (!context.setOptimizationProfileAsync(profile, stream)) {
        throw new BackendException("cannot select optimization profile " + profile);
      }
      for (IoTensor t : tensors) {
        if (t.input()) {
          long[] shape = TrtEngineBuilder.resolve(t.dims(), bucket.batch(), bucket.seq(), t.name());
          if (!context.setInputShape(t.name(), TrtEngineBuilder.dims64(shape))) {
            throw new BackendException(
                "shape " + java.util.Arrays.toString(shape) + " rejected for input " + t.name());
          }
          buffers.put(t.name(), new BucketBuffer(t, shape));
        }
      }
      if (!context.allInputShapesSpecified()) {
        throw new BackendException("not all input shapes are set for bucket " + bucket);
      }
      for (IoTensor t : tensors) {
        if (!t.input()) {
          long[] shape = TrtEngineBuilder.dimsOf(context.getTensorShape(t.name()));
          for (long d : shape) {
            if (d < 0) {
              throw new BackendException(
                  "output " + t.name() + " has a data-dependent shape; not supported");
            }
          }
          buffers.put(t.name(), new BucketBuffer(t, shape));
        }
      }
      for (BucketBuffer b : buffers.values()) {
        Cuda.check(
            cudaMalloc(b.device, b.bytes),
            "cudaMalloc (" + b.io.name() + ", bucket " + bucket + ")");
        if (b.io.input()) {
          Cuda.check(cudaMallocHost(b.host, b.bytes), "cudaMallocHost (" + b.io.name() + ")");
        }
        if (!context.setTensorAddress(b.io.name(), b.device)) {
          throw new BackendException("cannot bind tensor " + b.io.name());
        }
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  /**
   * Inputs to device, run (graph or enqueue), outputs straight into pooled pinned buffers cut to
   * the request's {@code batch} rows and {@code seq} length; returns after the stream is done.
   */
  Map<String, Tensor> execute(Runnable run, long batch, long seq, PinnedPool pool) {
    for (BucketBuffer b : buffers.values()) {
      if (b.io.input()) {
        Cuda.check(
            cudaMemcpyAsync(b.device, b.host, b.bytes, cudaMemcpyHostToDevice, stream),
            "cudaMemcpyAsync H2D");
      }
    }
    run.run();
    Map<String, Tensor> out = new LinkedHashMap<>();
    try {
      for (BucketBuffer b : buffers.values()) {
        if (b.io.input()) {
          continue;
        }
        Padding.OutputCut cut = Padding.cut(b, bucket.batch(), bucket.seq(), batch, seq);
        // Sized for the whole bucket, so every request of this bucket reuses the same buffers.
        Pointer dst = pool.acquire(b.bytes);
        out.put(
            b.io.name(),
            Tensor.wrapNative(dst, b.io.dtype(), cut.shape(), () -> pool.release(dst, b.bytes)));
        int rc =
            cut.seqCut()
                ? cudaMemcpy2DAsync(
                    dst,
                    cut.rowPitch(),
                    b.device,
                    cut.srcRowPitch(),
                    cut.rowPitch(),
                    batch,
                    cudaMemcpyDeviceToHost,
                    stream)
                : cudaMemcpyAsync(dst, b.device, cut.bytes(), cudaMemcpyDeviceToHost, stream);
        Cuda.check(rc, "D2H copy of " + b.io.name());
      }
      Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      return out;
    } catch (RuntimeException e) {
      cudaStreamSynchronize(stream);
      out.values().forEach(Tensor::close);
      throw e;
    }
  }

  void enqueue() {
    if (!context.enqueueV3(stream)) {
      throw new BackendException(
          "TensorRT enqueueV3 failed for bucket " + bucket + "; see its log");
    }
  }

  /** One plain enqueue (TensorRT finishes lazy setup there), then capture of the next one. */
  CudaGraph capture() {
    enqueue();
    Cuda.check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    return CudaGraph.capture(stream, this::enqueue);
  }

  long deviceBytes() {
    long n = 0;
    for (BucketBuffer b : buffers.values()) {
      n += b.bytes;
    }
    return n;
  }

  @Override
  public void close() {
    cudaStreamSynchronize(stream);
    NativeDelete.delete(context);
    for (BucketBuffer b : buffers.values()) {
      if (!b.device.isNull()) {
        cudaFree(b.device);
        b.device.setNull();
      }
      if (!b.host.isNull()) {
        cudaFreeHost(b.host);
        b.host.setNull();
      }
    }
  }
}
