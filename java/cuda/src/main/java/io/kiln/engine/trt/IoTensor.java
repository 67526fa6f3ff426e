package io.kiln.engine.trt;

import io.kiln.DType;
import io.kiln.TensorInfo;

/** An engine input or output: its name, element type and dimensions (-1 where dynamic). */
record IoTensor(String name, DType dtype, long[] dims, boolean input) {
  TensorInfo info() {
    String[] sym = new String[dims.length];
    if (dims.length > 0 && dims[0] < 0) {
      sym[0] = "batch";
    }
    if (dims.length > 1 && dims[1] < 0) {
      sym[1] = "sequence";
    }
    return new TensorInfo(name, dtype, dims, sym);
  }

  /** True when axis 1 is the (dynamic) sequence axis. */
  boolean hasSeqAxis() {
    return dims.length > 1 && dims[1] < 0;
  }
}
