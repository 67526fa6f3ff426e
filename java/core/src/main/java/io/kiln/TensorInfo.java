package io.kiln;

import java.util.Arrays;

/**
 * Name, dtype and dimensions of a model input or output. A dimension of -1 is dynamic; its symbolic
 * name, where the model gives one, is in {@link #symbolicDims()}.
 */
public record TensorInfo(String name, DType dtype, long[] dims, String[] symbolicDims) {
  public TensorInfo {
    dims = dims.clone();
    symbolicDims = symbolicDims == null ? new String[dims.length] : symbolicDims.clone();
    if (symbolicDims.length != dims.length) {
      throw new IllegalArgumentException("symbolicDims must have one entry per dimension");
    }
  }

  public int rank() {
    return dims.length;
  }

  public boolean isDynamic(int axis) {
    return dims[axis] < 0;
  }

  @Override
  public long[] dims() {
    return dims.clone();
  }

  @Override
  public String[] symbolicDims() {
    return symbolicDims.clone();
  }

  /** Dimensions as text, such as {@code [batch, sequence, 384]}. */
  public String dimsText() {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < dims.length; i++) {
      if (i > 0) {
        sb.append(", ");
      }
      if (dims[i] >= 0) {
        sb.append(dims[i]);
      } else {
        sb.append(symbolicDims[i] == null || symbolicDims[i].isEmpty() ? "?" : symbolicDims[i]);
      }
    }
    return sb.append(']').toString();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(dims, t.dims)
        && Arrays.equals(symbolicDims, t.symbolicDims);
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(dims);
  }

  @Override
  public String toString() {
    return name + " " + dtype.onnxName() + " " + dimsText();
  }
}
