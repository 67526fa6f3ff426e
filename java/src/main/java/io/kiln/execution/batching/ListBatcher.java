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
  public ListBatcher(List<TensorInfo> inputs, int maxBatchSize, int sequenceBucket) {
    if (maxBatchSize < 1 || sequenceBucket < 1) {
      throw new IllegalArgumentException("maxBatchSize and sequenceBucket must be >= 1");
    }
    this.inputs = inputs;
    this.maxBatchSize = maxBatchSize;
    this.sequenceBucket = sequenceBucket;
    this.canPad =
        inputs.stream().anyMatch(i -> i.rank() == 2 && i.name().toLowerCase().contains("mask"));
  }

  /** Whether this model pads shorter sequences (it has a rank-2 attention mask input). */
  public boolean canPad() {
    return canPad;
  }

  /** The sequence length of a request: axis 1 of its inputs whose axis 1 is dynamic, or -1. */
  public long sequenceLength(Map<String, Tensor> request) {
    long len = -1;
    for (TensorInfo info : inputs) {
      if (info.rank() >= 2 && info.isDynamic(1)) {
        len = Math.max(len, request.get(info.name()).dim(1));
      }
    }
    return len;
  }

  public List<BatchPlan> plan(List<Map<String, Tensor>> requests) {
    Map<Object, List<Integer>> groups = new LinkedHashMap<>();
    for (int i = 0; i < requests.size(); i++) {
      groups.computeIfAbsent(groupKey(requests.get(i)), k -> new ArrayList<>()).add(i);
    }
    List<BatchPlan> plans = new ArrayList<>();
    for (List<Integer> members : groups.values()) {
      List<Integer> current = new ArrayList<>();
      long rows = 0;
      for (int index : members) {
        long r = requests.get(index).get(inputs.get(0).name()).dim(0);
        if (!current.isEmpty() && rows + r > maxBatchSize) {
          plans.add(toPlan(current, requests));
          current = new ArrayList<>();
          rows = 0;
        }
        current.add(index);
        rows += r;
      }
      plans.add(toPlan(current, requests));
    }
    return plans;
  }

  private BatchPlan toPlan(List<Integer> members, List<Map<String, Tensor>> requests) {
    if (!canPad) {
      return new BatchPlan(List.copyOf(members), -1);
    }
    long longest = -1;
    for (int i : members) {
      longest = Math.max(longest, sequenceLength(requests.get(i)));
    }
    return new BatchPlan(List.copyOf(members), longest);
  }

  private Object groupKey(Map<String, Tensor> request) {
    if (canPad) {
      long len = sequenceLength(request);
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
