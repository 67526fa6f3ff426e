package io.kiln.bench;

import io.kiln.DType;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.model.onnx.IndexRanges;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Random inputs of a given batch and sequence length for any model: token ids are drawn within the
 * table each indexes (learned from the model, or below a given vocabulary), attention masks are all
 * ones, token types zero, and float inputs uniform.
 */
public final class InputFactory {
  /** Ids are drawn below this when neither the model nor the caller bounds an input. */
  static final int UNKNOWN_TABLE_IDS = 100;

  private final List<TensorInfo> inputs;
  private final IndexRanges ranges;
  private final int vocabulary;
  private final SplittableRandom random;

  /**
   * @param ranges what the model's integer inputs index
   * @param vocabulary ids are drawn below this instead, when positive
   */
  public InputFactory(List<TensorInfo> inputs, IndexRanges ranges, int vocabulary, long seed) {
    this.inputs = inputs;
    this.ranges = ranges;
    this.vocabulary = vocabulary;
    this.random = new SplittableRandom(seed);
  }

  /** The ids of {@code input} are drawn from [1, this). */
  private long idBound(String input) {
    if (vocabulary > 0) {
      return vocabulary;
    }
    Long rows = ranges.rows().get(input);
    return rows != null ? rows : UNKNOWN_TABLE_IDS;
  }

  /** Inputs with dynamic axis 0 = {@code batch} and every other dynamic axis = {@code seq}. */
  public Map<String, Tensor> make(int batch, int seq) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    for (TensorInfo info : inputs) {
      long[] dims = info.dims();
      for (int a = 0; a < dims.length; a++) {
        if (dims[a] < 0) {
          dims[a] = a == 0 ? batch : seq;
        }
      }
      out.put(info.name(), fill(info, dims));
    }
    return out;
  }

  private Tensor fill(TensorInfo info, long[] shape) {
    int n = Math.toIntExact(count(shape));
    String name = info.name().toLowerCase(java.util.Locale.ROOT);
    long bound = idBound(info.name());
    return switch (info.dtype()) {
      case I64, I32 -> {
        long[] v = new long[n];
        for (int i = 0; i < n; i++) {
          v[i] =
              name.contains("mask")
                  ? 1
                  : name.contains("type") ? 0 : 1 + random.nextLong(Math.max(1, bound - 1));
        }
        if (info.dtype() == DType.I64) {
          yield Tensor.of(v, shape);
        }
        int[] w = new int[n];
        for (int i = 0; i < n; i++) {
          w[i] = (int) v[i];
        }
        yield Tensor.of(w, shape);
      }
      case F32, F16, BF16, F8E4M3 -> {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
          v[i] = (float) (random.nextDouble() * 2 - 1);
        }
        yield Tensor.ofFloats(info.dtype(), v, shape);
      }
      case BOOL -> {
        boolean[] v = new boolean[n];
        java.util.Arrays.fill(v, true);
        yield Tensor.of(v, shape);
      }
      case I8 -> {
        byte[] v = new byte[n];
        for (int i = 0; i < n; i++) {
          v[i] = (byte) (random.nextInt(255) - 127);
        }
        yield Tensor.of(v, shape);
      }
    };
  }

  private static long count(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }
}
