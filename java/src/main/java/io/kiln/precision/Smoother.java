package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.util.ArrayList;
import java.util.HashSet;
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
  static List<Integer> targets(OnnxModel model, Quantizer.Options options) {
    Map<String, Proto> inits = model.initializers();
    List<Node> nodes = model.nodes();
    Set<Integer> quantized = new HashSet<>();
    for (QdqPlacement.Edge e : QdqPlacement.plan(model, options).edges()) {
      quantized.add(e.node());
    }
    List<Integer> out = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      Proto w = inits.get(n.input(1));
      if (n.opType().equals("MatMul")
          && quantized.contains(i)
          && !inits.containsKey(n.input(0))
          && w != null
          && TensorProtos.dims(w).length == 2
          && TensorProtos.dataType(w) == TensorProtos.FLOAT) {
        out.add(i);
      }
    }
    return out;
  }

  /** The activation tensors whose per-channel ranges smoothing needs. */
  static List<String> activations(OnnxModel model, Quantizer.Options options) {
    Set<String> out = new LinkedHashSet<>();
    List<Node> nodes = model.nodes();
    for (int i : targets(model, options)) {
      out.add(nodes.get(i).input(0));
    }
    return new ArrayList<>(out);
  }

  /** A smoothed copy of the model; {@code channelAmax} holds amax per last-axis channel of X. */
  static OnnxModel apply(
      OnnxModel model, Map<String, float[]> channelAmax, Quantizer.Options options) {
    OnnxModel m = model.copy();
    double alpha = options.smoothing();
    List<Node> nodes = m.nodes();
    Map<String, Proto> inits = m.initializers();
    Set<Integer> targets = new HashSet<>(targets(m, options));
    Set<String> replacedWeights = new LinkedHashSet<>();
    List<Node> out = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      if (targets.contains(i)) {
        String x = n.input(0);
        float[] xmax = channelAmax.get(x);
        Proto wProto = inits.get(n.input(1));
        long[] dims = TensorProtos.dims(wProto);
        int k = (int) dims[0];
        int cols = (int) dims[1];
        if (xmax == null || xmax.length != k) {
          throw new InvalidInputException(
              "calibration has no per-channel range of " + x + " for smoothing; recalibrate");
        }
        float[] w = TensorProtos.floats(wProto);
        float[] inv = new float[k];
        float[] scaled = w.clone();
        for (int j = 0; j < k; j++) {
          float wmax = 0;
          for (int c = 0; c < cols; c++) {
            wmax = Math.max(wmax, Math.abs(w[j * cols + c]));
          }
          double s =
              xmax[j] > 0 && wmax > 0 ? Math.pow(xmax[j], alpha) / Math.pow(wmax, 1 - alpha) : 1.0;
          s = Math.min(Math.max(s, 1e-5), 1e5);
          inv[j] = (float) (1 / s);
          for (int c = 0; c < cols; c++) {
            scaled[j * cols + c] = (float) (w[j * cols + c] * s);
          }
        }
        String tag = "_smoothed_" + i;
        String invName = x + "_smoothing_" + i;
        String xs = x + tag;
        String ws = n.input(1) + tag;
        m.addInitializer(TensorProtos.ofFloats(invName, inv, k));
        m.addInitializer(TensorProtos.ofFloats(ws, scaled, dims));
        out.add(Node.create("Mul", xs + "_Mul", List.of(x, invName), List.of(xs)));
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
}
