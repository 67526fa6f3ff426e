package io.kiln.precision;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Compares sentence embeddings of two graphs of the same text encoder: mean-pooled (attention mask)
 * and L2-normalized token states. Gives each sentence's cosine between the two and the Spearman
 * correlation of all pairwise similarities, which is what retrieval quality depends on.
 */
public final class EmbeddingComparison {
  /** Mean and minimum per-sentence cosine, and Spearman of pairwise similarities. */
  public record Result(int sentences, double meanCosine, double minCosine, double spearman) {}

  private EmbeddingComparison() {}

  public static Result compare(
      OrtRunner reference,
      OrtRunner candidate,
      HuggingFaceTokenizer tokenizer,
      List<String> inputNames,
      List<String> sentences,
      int batchSize) {
    float[][] a = embed(reference, tokenizer, inputNames, sentences, batchSize);
    float[][] b = embed(candidate, tokenizer, inputNames, sentences, batchSize);
    double sum = 0;
    double min = 1;
    for (int i = 0; i < a.length; i++) {
      double c = dot(a[i], b[i]);
      sum += c;
      min = Math.min(min, c);
    }
    return new Result(a.length, sum / a.length, min, spearman(pairwise(a), pairwise(b)));
  }

  /** L2-normalized mean-pooled embeddings of the first output. */
  public static float[][] embed(
      OrtRunner runner,
      HuggingFaceTokenizer tokenizer,
      List<String> inputNames,
      List<String> sentences,
      int batchSize) {
    List<float[]> out = new ArrayList<>();
    for (int s = 0; s < sentences.size(); s += batchSize) {
      List<String> batch = sentences.subList(s, Math.min(sentences.size(), s + batchSize));
      Map<String, Tensor> feed = TextCalibrationData.encode(tokenizer, batch, inputNames);
      try {
        long[] mask = feed.get("attention_mask").toLongArray();
        OrtRunner.Output hidden = runner.run(feed).values().iterator().next();
        int len = (int) hidden.shape()[1];
        int dim = (int) hidden.shape()[2];
        for (int r = 0; r < batch.size(); r++) {
          float[] e = new float[dim];
          int tokens = 0;
          for (int t = 0; t < len; t++) {
            if (mask[r * len + t] == 0) {
              continue;
            }
            tokens++;
            for (int d = 0; d < dim; d++) {
              e[d] += hidden.data()[(r * len + t) * dim + d];
            }
          }
          double norm = 0;
          for (int d = 0; d < dim; d++) {
            e[d] /= Math.max(tokens, 1);
            norm += e[d] * e[d];
          }
          float inv = (float) (1 / Math.max(Math.sqrt(norm), 1e-12));
          for (int d = 0; d < dim; d++) {
            e[d] *= inv;
          }
          out.add(e);
        }
      } finally {
        feed.values().forEach(Tensor::close);
      }
    }
    return out.toArray(new float[0][]);
  }

  private static double dot(float[] x, float[] y) {
    double s = 0;
    for (int i = 0; i < x.length; i++) {
      s += x[i] * y[i];
    }
    return s;
  }

  private static double[] pairwise(float[][] e) {
    int n = e.length;
    double[] out = new double[n * (n - 1) / 2];
    int k = 0;
    for (int i = 0; i < n; i++) {
      for (int j = i + 1; j < n; j++) {
        out[k++] = dot(e[i], e[j]);
      }
    }
    return out;
  }

  /** Spearman rank correlation (average ranks for ties). */
  public static double spearman(double[] x, double[] y) {
    double[] rx = ranks(x);
    double[] ry = ranks(y);
    double mx = Arrays.stream(rx).average().orElse(0);
    double my = Arrays.stream(ry).average().orElse(0);
    double sxy = 0;
    double sxx = 0;
    double syy = 0;
    for (int i = 0; i < rx.length; i++) {
      sxy += (rx[i] - mx) * (ry[i] - my);
      sxx += (rx[i] - mx) * (rx[i] - mx);
      syy += (ry[i] - my) * (ry[i] - my);
    }
    return sxy / Math.sqrt(sxx * syy);
  }

  private static double[] ranks(double[] v) {
    Integer[] idx = new Integer[v.length];
    for (int i = 0; i < idx.length; i++) {
      idx[i] = i;
    }
    Arrays.sort(idx, (p, q) -> Double.compare(v[p], v[q]));
    double[] r = new double[v.length];
    for (int i = 0; i < idx.length; ) {
      int j = i;
      while (j + 1 < idx.length && v[idx[j + 1]] == v[idx[i]]) {
        j++;
      }
      double rank = (i + j) / 2.0 + 1;
      for (int k = i; k <= j; k++) {
        r[idx[k]] = rank;
      }
      i = j + 1;
    }
    return r;
  }
}
