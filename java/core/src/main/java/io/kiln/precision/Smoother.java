package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Moves quantization difficulty from activations to weights before INT8 placement. Transformer
 * activations carry a few outlier channels that a per-tensor scale cannot represent well, while
 * weights are quantized per channel anyway. For a MatMul {@code X W} with a 2-D weight this divides
 * input channel j of X by {@code s_j = amax(X_j)^alpha / amax(W_j)^(1-alpha)} (a Mul inserted on
 * that edge) and multiplies row j of W by {@code s_j}, which leaves the product unchanged in exact
 * arithmetic (the SmoothQuant rescaling).
 */
final class Smoother {
  private Smoother() {}

  /** MatMul nodes with an activation first input and a 2-D initializer weight, by index. */
  static List<Integer> targets(OnnxModel model, QuantizerOptions options) {
    Map<String, Proto> inits = model.initializers();
    List<Node> nodes = model.nodes();
    Set<Integer> quantized = new HashSet<>();
    for (QdqPlacement.Edge e : QdqPlacement.plan(model, options).edges()) {
      quantized.add(e.node());
    }
    List<Integer> out = new ArrayList<>();
    List<java.util.regex.Pattern> unsmoothed =
        options.unsmoothedNodes().stream().map(Smoother::glob).toList();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      Proto w = inits.get(n.input(1));
      if (n.opType().equals("MatMul")
          && quantized.contains(i)
          && unsmoothed.stream().noneMatch(g -> g.matcher(n.name()).matches())
          && !inits.containsKey(n.input(0))
          && w != null
          && TensorProtos.dims(w).length == 2
          && TensorProtos.dataType(w) == TensorProtos.FLOAT) {
        out.add(i);
      }
    }
    return out;
  }

  /**
   * A node-name pattern: {@code **} matches any run of characters, {@code *} any run without a
   * {@code /}, everything else itself.
   */
  static java.util.regex.Pattern glob(String pattern) {
    StringBuilder re = new StringBuilder();
    String[] deep = pattern.split("\\*\\*", -1);
    for (int d = 0; d < deep.length; d++) {
      if (d > 0) {
        re.append(".*");
      }
      String[] parts = deep[d].split("\\*", -1);
      for (int p = 0; p < parts.length; p++) {
        if (p > 0) {
          re.append("[^/]*");
        }
        re.append(java.util.regex.Pattern.quote(parts[p]));
      }
    }
    return java.util.regex.Pattern.compile(re.toString());
  }

  /** The activation tensors whose per-channel ranges smoothing needs. */
  static List<String> activations(OnnxModel model, QuantizerOptions options) {
    Set<String> out = new LinkedHashSet<>();
    List<Node> nodes = model.nodes();
    for (int i : targets(model, options)) {
      out.add(nodes.get(i).input(0));
    }
    return new ArrayList<>(out);
  }

  /**
   * A smoothed copy of the model; {@code channelAmax} holds amax per last-axis channel of X. Each
   * target gets its own scale, or, with {@link QuantizerOptions#sharedQdq()}, all targets reading
   * one tensor share a scale (from the largest of their weight rows) and one Mul.
   */
  static OnnxModel apply(
      OnnxModel model, Map<String, float[]> channelAmax, QuantizerOptions options) {
    OnnxModel m = model.copy();
    List<Node> nodes = m.nodes();
    Map<String, Proto> inits = m.initializers();
    Map<Integer, String> groupOf = new HashMap<>();
    Map<String, List<Integer>> members = new LinkedHashMap<>();
    for (int i : targets(m, options)) {
      String g = options.sharedQdq() ? "" : "_" + i;
      groupOf.put(i, g);
      members.computeIfAbsent(nodes.get(i).input(0) + g, k -> new ArrayList<>()).add(i);
    }
    Map<String, double[]> scaleOf = new HashMap<>();
    // Each target's weight, decoded once for its group's scales and then rescaled in place.
    Map<Integer, float[]> weightOf = new HashMap<>();
    Set<String> replacedWeights = new LinkedHashSet<>();
    List<Node> out = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      String g = groupOf.get(i);
      if (g != null) {
        String x = n.input(0);
        String xs = x + "_smoothed" + g;
        double[] s = scaleOf.get(x + g);
        if (s == null) {
          List<float[]> weights = new ArrayList<>();
          for (int j : members.get(x + g)) {
            float[] w = TensorProtos.floats(inits.get(nodes.get(j).input(1)));
            weightOf.put(j, w);
            weights.add(w);
          }
          int k = (int) TensorProtos.dims(inits.get(n.input(1)))[0];
          s = scales(x, channelAmax.get(x), weights, k, options.smoothing());
          scaleOf.put(x + g, s);
          float[] inv = new float[k];
          for (int j = 0; j < k; j++) {
            inv[j] = (float) (1 / s[j]);
          }
          String invName = x + "_smoothing" + g;
          m.addInitializer(TensorProtos.ofFloats(invName, inv, k));
          out.add(Node.create("Mul", xs + "_Mul", List.of(x, invName), List.of(xs)));
        }
        Proto wProto = inits.get(n.input(1));
        long[] dims = TensorProtos.dims(wProto);
        float[] scaled = weightOf.remove(i);
        int cols = (int) dims[1];
        for (int j = 0; j < s.length; j++) {
          for (int c = 0; c < cols; c++) {
            scaled[j * cols + c] = (float) (scaled[j * cols + c] * s[j]);
          }
        }
        String ws = n.input(1) + "_smoothed_" + i;
        m.addInitializer(TensorProtos.ofFloats(ws, scaled, dims));
        replacedWeights.add(n.input(1));
        n.setInput(0, xs);
        n.setInput(1, ws);
      }
      out.add(n);
    }
    Set<String> read = new HashSet<>();
    for (Node n : out) {
      read.addAll(n.inputs());
    }
    for (String w : replacedWeights) {
      if (!read.contains(w)) {
        m.removeInitializer(w);
      }
    }
    m.setNodes(out);
    return m;
  }

  /** {@code s_j = amax(X_j)^alpha / amax(W_j)^(1-alpha)}, W_j over every row j of the weights. */
  private static double[] scales(
      String x, float[] xmax, List<float[]> weights, int k, double alpha) {
    if (xmax == null || xmax.length != k) {
      throw new InvalidInputException(
          "calibration has no per-channel range of " + x + " for smoothing; recalibrate");
    }
    double[] s = new double[k];
    for (int j = 0; j < k; j++) {
      float wmax = 0;
      for (float[] w : weights) {
        int cols = w.length / k;
        for (int c = 0; c < cols; c++) {
          wmax = Math.max(wmax, Math.abs(w[j * cols + c]));
        }
      }
      double v =
          xmax[j] > 0 && wmax > 0 ? Math.pow(xmax[j], alpha) / Math.pow(wmax, 1 - alpha) : 1.0;
      s[j] = Math.min(Math.max(v, 1e-5), 1e5);
    }
    return s;
  }
}
