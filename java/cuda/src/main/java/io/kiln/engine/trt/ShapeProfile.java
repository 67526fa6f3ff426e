package io.kiln.engine.trt;

import io.kiln.InvalidInputException;
import java.util.ArrayList;
import java.util.List;

/**
 * One TensorRT optimization profile: the batch range (axis 0 of every input) and the sequence range
 * (axis 1 of inputs whose axis 1 is dynamic). A profile with min = opt = max is a static profile
 * for one CUDA-graph bucket, which lets TensorRT pick kernels for exactly that shape.
 */
public record ShapeProfile(DimRange batch, DimRange seq) {
  public static ShapeProfile of(String batch, String seq) {
    return new ShapeProfile(DimRange.parse(batch), DimRange.parse(seq));
  }

  public static ShapeProfile fixed(long batch, long seq) {
    return new ShapeProfile(DimRange.fixed(batch), DimRange.fixed(seq));
  }

  /** One static profile per (batch, seq) pair: the per-bucket layout. */
  public static List<ShapeProfile> perBucket(long[] batches, long[] seqs) {
    List<ShapeProfile> out = new ArrayList<>();
    for (long b : batches) {
      for (long s : seqs) {
        out.add(fixed(b, s));
      }
    }
    return out;
  }

  /** Parses {@code batch=MIN:OPT:MAX,seq=MIN:OPT:MAX} as written by {@link #toString()}. */
  public static ShapeProfile parse(String text) {
    String batch = null;
    String seq = null;
    for (String part : text.split(",")) {
      String[] kv = part.split("=", 2);
      if (kv.length == 2 && kv[0].trim().equals("batch")) {
        batch = kv[1];
      } else if (kv.length == 2 && kv[0].trim().equals("seq")) {
        seq = kv[1];
      }
    }
    if (batch == null || seq == null) {
      throw new InvalidInputException("expected batch=..,seq=.., got '" + text + "'");
    }
    return of(batch, seq);
  }

  public boolean contains(long b, long s) {
    return batch.contains(b) && seq.contains(s);
  }

  public boolean isStatic() {
    return batch.min() == batch.max() && seq.min() == seq.max();
  }

  @Override
  public String toString() {
    return "batch=" + batch + ",seq=" + seq;
  }
}
