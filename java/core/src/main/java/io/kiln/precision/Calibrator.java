package io.kiln.precision;

import io.kiln.model.onnx.OnnxModel;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Computes per-tensor amax values over calibration data. The first pass records the largest |x|;
 * the histogram methods take a second pass filling a 2048-bin histogram of |x| over [0, max].
 */
public final class Calibrator {
  private final CalibrationMethod method;
  private final double percentile;
  private final Progress progress;

  public Calibrator(CalibrationMethod method, double percentile, Progress progress) {
    this.method = method;
    this.percentile = percentile;
    this.progress = progress;
  }

  /** The largest |x| per channel of the last axis of each tensor. */
  public Map<String, float[]> channelMax(
      OnnxModel model, Collection<String> tensors, CalibrationData data) {
    Map<String, float[]> max = new LinkedHashMap<>();
    try (ActivationObserver obs = new ActivationObserver(model, tensors, 0)) {
      obs.observe(
          data,
          (t, o) -> {
            long[] shape = o.shape();
            int c = shape.length == 0 ? 1 : (int) shape[shape.length - 1];
            float[] m = max.computeIfAbsent(t, k -> new float[c]);
            float[] v = o.data();
            for (int i = 0; i < v.length; i++) {
              m[i % c] = Math.max(m[i % c], Math.abs(v[i]));
            }
          },
          "channels",
          progress);
    }
    return max;
  }

  public CalibrationCache calibrate(
      OnnxModel model, String modelSha256, Collection<String> tensors, CalibrationData data) {
    Map<String, Float> max = new LinkedHashMap<>();
    long samples;
    Map<String, Histogram> histograms = new HashMap<>();
    try (ActivationObserver obs = new ActivationObserver(model, tensors, 0)) {
      samples =
          obs.observe(
              data,
              (t, o) -> {
                float m = max.getOrDefault(t, 0f);
                for (float x : o.data()) {
                  m = Math.max(m, Math.abs(x));
                }
                max.put(t, m);
              },
              "range",
              progress);
      if (method != CalibrationMethod.MAX) {
        obs.observe(
            data,
            (t, o) -> histograms.computeIfAbsent(t, k -> new Histogram(max.get(k))).add(o.data()),
            "histogram",
            progress);
      }
    }
    Map<String, CalibrationCache.Entry> entries = new LinkedHashMap<>();
    for (Map.Entry<String, Float> e : max.entrySet()) {
      float amax =
          switch (method) {
            case MAX -> e.getValue();
            case PERCENTILE -> histograms.get(e.getKey()).percentile(percentile);
            case ENTROPY -> histograms.get(e.getKey()).entropy();
            case MSE -> histograms.get(e.getKey()).mse();
          };
      // A tensor that was always zero still needs a positive scale.
      entries.put(e.getKey(), new CalibrationCache.Entry(Math.max(amax, 1e-6f), method, samples));
    }
    return new CalibrationCache(modelSha256, data.description(), entries);
  }
}
