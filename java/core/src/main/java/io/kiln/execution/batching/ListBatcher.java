package io.kiln.execution.batching;

import io.kiln.Tensor;
import io.kiln.TensorInfo;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Groups a list of requests into engine runs. Requests whose sequence lengths fall into the same
 * bucket share a run, padded with zeros (the attention mask marks the padding), up to the maximum
 * batch; models without an attention mask are grouped only by identical shapes.
 */
public final class ListBatcher {
  private final List<TensorInfo> inputs;
  private final int maxBatchSize;
  private final int sequenceBucket;
  private final boolean canPad;

  /**
   * @param sequenceBucket sequence lengths are rounded up to a multiple of this to form groups
   */
  public ListBatcher(
      List<TensorInfo> inputs, List<TensorInfo> outputs, int maxBatchSize, int sequenceBucket) {
    if (maxBatchSize < 1 || sequenceBucket < 1) {
      throw new IllegalArgumentException("maxBatchSize and sequenceBucket must be >= 1");
    }
    this.inputs = inputs;
    this.maxBatchSize = maxBatchSize;
    this.sequenceBucket = sequenceBucket;
    this.canPad = MergedRun.canPad(inputs, outputs);
  }

  /** Whether this model pads shorter sequences (see {@link MergedRun#canPad}). */
  public boolean canPad() {
    return canPad;
  }

  /** Groups of request indices, each to run as one batch, in the order they should run. */
  public List<List<Integer>> plan(List<Map<String, Tensor>> requests) {
    Map<Object, List<Integer>> groups = new LinkedHashMap<>();
    for (int i = 0; i < requests.size(); i++) {
      groups.computeIfAbsent(groupKey(requests.get(i)), k -> new ArrayList<>()).add(i);
    }
    List<List<Integer>> plans = new ArrayList<>();
    for (List<Integer> members : groups.values()) {
      List<Integer> current = new ArrayList<>();
      long rows = 0;
      for (int index : members) {
        long r = requests.get(index).get(inputs.get(0).name()).dim(0);
        if (!current.isEmpty() && rows + r > maxBatchSize) {
          plans.add(List.copyOf(current));
          current = new ArrayList<>();
          rows = 0;
        }
        current.add(index);
        rows += r;
      }
      plans.add(List.copyOf(current));
    }
    return plans;
  }

  private Object groupKey(Map<String, Tensor> request) {
    if (canPad) {
      long len = MergedRun.sequenceLength(inputs, request);
      return len < 0 ? -1L : (len + sequenceBucket - 1) / sequenceBucket;
    }
    List<Object> key = new ArrayList<>();
    for (TensorInfo info : inputs) {
      long[] shape = request.get(info.name()).shape();
      key.add(Arrays.toString(Arrays.copyOfRange(shape, 1, shape.length)));
    }
    return Objects.hash(key.toArray()) + ":" + key;
  }
}
