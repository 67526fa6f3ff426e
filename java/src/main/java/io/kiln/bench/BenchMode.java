package io.kiln.bench;

import io.kiln.Session;
import java.util.List;

/** Benchmark presets: which batch sizes, precision and graph setting a run uses. */
public enum BenchMode {
  /** Large batches, FP16, CUDA graphs: throughput on a GPU. */
  BATCH(List.of(32, 64, 128), Session.Precision.FP16, true, Session.Device.AUTO),
  /** Medium batches, FP16. */
  FAST(List.of(8, 16, 32), Session.Precision.FP16, true, Session.Device.AUTO),
  /** Small batches, INT8. */
  LITE(List.of(1, 2, 4), Session.Precision.INT8, true, Session.Device.AUTO),
  /** ONNX Runtime on the CPU, INT8, tiny batches. */
  CPU(List.of(1, 2), Session.Precision.INT8, false, Session.Device.CPU),
  /** The usual sweep in FP32. */
  DEFAULT(List.of(1, 4, 8, 16, 32), Session.Precision.FP32, true, Session.Device.AUTO),
  /** FP32 at batch 1: the reference numbers. */
  ACCURATE(List.of(1), Session.Precision.FP32, false, Session.Device.AUTO);

  private final List<Integer> batches;
  private final Session.Precision precision;
  private final boolean cudaGraphs;
  private final Session.Device device;

  BenchMode(
      List<Integer> batches,
      Session.Precision precision,
      boolean cudaGraphs,
      Session.Device device) {
    this.batches = batches;
    this.precision = precision;
    this.cudaGraphs = cudaGraphs;
    this.device = device;
  }

  public List<Integer> batches() {
    return batches;
  }

  public Session.Precision precision() {
    return precision;
  }

  public boolean cudaGraphs() {
    return cudaGraphs;
  }

  public Session.Device device() {
    return device;
  }
}
