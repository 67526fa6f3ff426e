package io.kiln.bench;

import io.kiln.Device;
import io.kiln.Precision;
import java.util.List;

/** Benchmark presets: which batch sizes, precision and graph setting a run uses. */
public enum BenchMode {
  /** Large batches, FP16, CUDA graphs: throughput on a GPU. */
  BATCH(List.of(32, 64, 128), Precision.FP16, true, Device.AUTO),
  /** Medium batches, FP16. */
  FAST(List.of(8, 16, 32), Precision.FP16, true, Device.AUTO),
  /** Small batches, INT8. */
  LITE(List.of(1, 2, 4), Precision.INT8, true, Device.AUTO),
  /** ONNX Runtime on the CPU, INT8, tiny batches. */
  CPU(List.of(1, 2), Precision.INT8, false, Device.CPU),
  /** The usual sweep in FP32. */
  DEFAULT(List.of(1, 4, 8, 16, 32), Precision.FP32, true, Device.AUTO),
  /** FP32 at batch 1: the reference numbers. */
  ACCURATE(List.of(1), Precision.FP32, false, Device.AUTO);

  private final List<Integer> batches;
  private final Precision precision;
  private final boolean cudaGraphs;
  private final Device device;

  BenchMode(List<Integer> batches, Precision precision, boolean cudaGraphs, Device device) {
    this.batches = batches;
    this.precision = precision;
    this.cudaGraphs = cudaGraphs;
    this.device = device;
  }

  public List<Integer> batches() {
    return batches;
  }

  public Precision precision() {
    return precision;
  }

  public boolean cudaGraphs() {
    return cudaGraphs;
  }

  public Device device() {
    return device;
  }
}
