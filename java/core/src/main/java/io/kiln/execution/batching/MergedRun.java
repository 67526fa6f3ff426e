package io.kiln.execution.batching;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.engine.Engine;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Runs several requests as one engine run: their rows are stacked along axis 0 (axis 1 zero-padded
 * to the longest where padding is allowed), and each request's rows, and length, are cut back out
 * of every output.
 */
public final class MergedRun {
  private MergedRun() {}

  /**
   * Whether requests of different lengths may share a run: a rank-2 attention mask hides the
   * padding, and every output varies only in its batch and sequence axes, so it can be cut back.
   */
  public static boolean canPad(List<TensorInfo> inputs, List<TensorInfo> outputs) {
    return inputs.stream()
            .anyMatch(i -> i.rank() == 2 && i.name().toLowerCase(Locale.ROOT).contains("mask"))
        && outputs.stream().allMatch(MergedRun::onlyLeadingAxesDynamic);
  }

  /** The longest axis 1 among a request's inputs whose axis 1 is dynamic, or -1 if none is. */
  public static long sequenceLength(List<TensorInfo> inputs, Map<String, Tensor> request) {
    long len = -1;
    for (TensorInfo info : inputs) {
      if (hasSequenceAxis(info)) {
        len = Math.max(len, request.get(info.name()).dim(1));
      }
    }
    return len;
  }

  /**
   * Runs {@code requests} (each with the engine's inputs) as one batch; with {@code pad}, shorter
   * sequences are zero-padded. Returns each request's outputs, in order; the caller owns them.
   */
  public static List<Map<String, Tensor>> run(
      Engine engine, List<Map<String, Tensor>> requests, boolean pad) {
    if (requests.size() == 1) {
      return List.of(engine.run(requests.get(0)));
    }
    long[] lengths = new long[requests.size()];
    long longest = -1;
    for (int i = 0; i < lengths.length; i++) {
      lengths[i] = pad ? sequenceLength(engine.inputs(), requests.get(i)) : -1;
      longest = Math.max(longest, lengths[i]);
    }
    Map<String, Tensor> merged = new LinkedHashMap<>();
    Map<String, Tensor> outputs = null;
    List<Map<String, Tensor>> split = new ArrayList<>();
    try {
      for (TensorInfo info : engine.inputs()) {
        List<Tensor> parts = new ArrayList<>();
        for (Map<String, Tensor> r : requests) {
          Tensor t = r.get(info.name());
          if (t == null) {
            throw new InvalidInputException(
                "input '" + info.name() + "' missing from a batched request");
          }
          parts.add(t);
        }
        boolean padded = pad && hasSequenceAxis(info);
        merged.put(info.name(), RowTensors.concat(parts, padded ? longest : -1));
      }
      outputs = engine.run(merged);
      long row = 0;
      for (int i = 0; i < lengths.length; i++) {
        long rows = requests.get(i).get(engine.inputs().get(0).name()).dim(0);
        Map<String, Tensor> mine = new LinkedHashMap<>();
        split.add(mine);
        for (TensorInfo info : engine.outputs()) {
          Tensor o = outputs.get(info.name());
          boolean cut = lengths[i] >= 0 && hasSequenceAxis(info) && o.dim(1) == longest;
          mine.put(info.name(), RowTensors.slice(o, row, rows, cut ? lengths[i] : -1));
        }
        row += rows;
      }
      return split;
    } catch (RuntimeException e) {
      split.forEach(m -> m.values().forEach(Tensor::close));
      throw e;
    } finally {
      merged.values().forEach(Tensor::close);
      if (outputs != null) {
        outputs.values().forEach(Tensor::close);
      }
    }
  }

  private static boolean onlyLeadingAxesDynamic(TensorInfo info) {
    for (int a = 2; a < info.rank(); a++) {
      if (info.isDynamic(a)) {
        return false;
      }
    }
    return true;
  }

  private static boolean hasSequenceAxis(TensorInfo info) {
    return info != null && info.rank() > 1 && info.isDynamic(1);
  }
}
