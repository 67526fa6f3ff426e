package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.TensorProtos;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Random;

/**
 * Seeded random inputs for smoke runs. Dynamic dimensions become {@code batch} (the first) and
 * {@code seqLen} (the others). Token ids stay below the vocabulary size of the embedding they
 * index; inputs named like masks are all ones and token type ids zeros.
 */
public final class RandomCalibrationData implements CalibrationData {
  private final OnnxModel model;
  private final int count;
  private final int batch;
  private final int seqLen;
  private final long seed;

  public RandomCalibrationData(OnnxModel model, int count, int batch, int seqLen, long seed) {
    if (count <= 0) {
      throw new InvalidInputException("calibration set is empty: random:" + count);
    }
    this.model = model;
    this.count = count;
    this.batch = batch;
    this.seqLen = seqLen;
    this.seed = seed;
  }

  @Override
  public String description() {
    return "random:" + count;
  }

  @Override
  public Iterator<Map<String, Tensor>> batches() {
    Random random = new Random(seed);
    return new Iterator<>() {
      int produced;

      @Override
      public boolean hasNext() {
        return produced < count;
      }

      @Override
      public Map<String, Tensor> next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        produced++;
        return sample(model, random, batch, seqLen);
      }
    };
  }

  /** One random feed for every graph input. */
  public static Map<String, Tensor> sample(OnnxModel model, Random random, int batch, int seqLen) {
    Map<String, Tensor> feed = new LinkedHashMap<>();
    for (io.kiln.model.onnx.Proto vi : model.graphInputs()) {
      String name = vi.getString(1);
      if (model.initializers().containsKey(name)) {
        continue;
      }
      long[] dims = OnnxModel.dims(vi);
      if (dims == null) {
        throw new InvalidInputException("input " + name + " has no shape; give calibration files");
      }
      long[] shape = dims.clone();
      for (int i = 0; i < shape.length; i++) {
        if (shape[i] < 0) {
          shape[i] = i == 0 ? batch : seqLen;
        }
      }
      int n = Math.toIntExact(count(shape));
      int type = OnnxModel.elemType(vi);
      String lower = name.toLowerCase(java.util.Locale.ROOT);
      switch (type) {
        case TensorProtos.FLOAT -> {
          float[] v = new float[n];
          for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
          }
          feed.put(name, Tensor.of(v, shape));
        }
        case TensorProtos.INT64, TensorProtos.INT32 -> {
          long[] v = new long[n];
          long bound = vocabularySize(model, name);
          for (int i = 0; i < n; i++) {
            v[i] = lower.contains("mask") ? 1 : lower.contains("type") ? 0 : random.nextLong(bound);
          }
          if (type == TensorProtos.INT64) {
            feed.put(name, Tensor.of(v, shape));
          } else {
            int[] iv = new int[n];
            for (int i = 0; i < n; i++) {
              iv[i] = (int) v[i];
            }
            feed.put(name, Tensor.of(iv, shape));
          }
        }
        case TensorProtos.BOOL -> {
          boolean[] v = new boolean[n];
          for (int i = 0; i < n; i++) {
            v[i] = random.nextBoolean();
          }
          feed.put(name, Tensor.of(v, shape));
        }
        default ->
            throw new InvalidInputException(
                "input " + name + " has element type " + type + " that random data cannot fill");
      }
    }
    return feed;
  }

  private static long count(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** The row count of the first Gather table this input indexes, else 100. */
  static long vocabularySize(OnnxModel model, String input) {
    for (Node n : model.nodes()) {
      if (n.opType().equals("Gather") && n.input(1).equals(input)) {
        io.kiln.model.onnx.Proto table = model.initializers().get(n.input(0));
        if (table != null && TensorProtos.dims(table).length > 0) {
          return Math.max(1, TensorProtos.dims(table)[0]);
        }
      }
    }
    return 100;
  }
}
