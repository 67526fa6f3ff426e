package io.kiln.precision;

import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.TensorProtos;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Where Q/DQ pairs go: both inputs of MatMul, Gemm and Conv (weights per channel, activations per
 * tensor), and both inputs of residual Adds (an Add of two activations that feeds a layer norm), so
 * TensorRT can fuse the skip connection. Biases and graph outputs are never quantized.
 */
public final class QdqPlacement {
  /**
   * One node input to quantize; {@code axis} is the channel axis of a weight, -1 for per-tensor.
   */
  public record Edge(int node, int input, String tensor, boolean weight, int axis) {}

  private final List<Edge> edges;

  private QdqPlacement(List<Edge> edges) {
    this.edges = List.copyOf(edges);
  }

  public List<Edge> edges() {
    return edges;
  }

  /** The activation tensors that need calibrated ranges, in graph order. */
  public List<String> activations() {
    Set<String> out = new LinkedHashSet<>();
    for (Edge e : edges) {
      if (!e.weight()) {
        out.add(e.tensor());
      }
    }
    return new ArrayList<>(out);
  }

  public static QdqPlacement plan(OnnxModel model, QuantizerOptions options) {
    List<Node> nodes = model.nodes();
    Set<String> initializers = model.initializers().keySet();
    Set<String> constants = new HashSet<>(initializers);
    Map<String, List<Node>> consumers = new HashMap<>();
    for (Node n : nodes) {
      if (n.opType().equals("Constant")) {
        constants.addAll(n.outputs());
      }
      for (String in : n.inputs()) {
        consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
      }
    }
    List<Integer> compute = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      if (isComputeOp(nodes.get(i).opType()) && !excluded(nodes.get(i), options)) {
        compute.add(i);
      }
    }
    Set<Integer> skipped = new HashSet<>();
    if (options.keepFirstAndLast() && !compute.isEmpty()) {
      skipped.add(compute.get(0));
      skipped.add(compute.get(compute.size() - 1));
    }
    List<Edge> edges = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      if (excluded(n, options) || skipped.contains(i)) {
        continue;
      }
      String op = n.opType();
      boolean weighted =
          isComputeOp(op)
              && (initializers.contains(n.input(0)) || initializers.contains(n.input(1)));
      if (isComputeOp(op) && (weighted || !options.weightedOnly())) {
        for (int k = 0; k < 2; k++) {
          String t = n.input(k);
          if (initializers.contains(t)) {
            edges.add(new Edge(i, k, t, true, weightAxis(model, n, k)));
          } else if (!constants.contains(t)) {
            edges.add(new Edge(i, k, t, false, -1));
          }
        }
      } else if (op.equals("Add")
          && options.quantizeResidualAdd()
          && n.inputs().size() == 2
          && !constants.contains(n.input(0))
          && !constants.contains(n.input(1))
          && feedsLayerNorm(n.output(0), consumers)) {
        edges.add(new Edge(i, 0, n.input(0), false, -1));
        edges.add(new Edge(i, 1, n.input(1), false, -1));
      }
    }
    return new QdqPlacement(edges);
  }

  static boolean isComputeOp(String op) {
    return op.equals("MatMul") || op.equals("Gemm") || op.equals("Conv");
  }

  private static boolean excluded(Node n, QuantizerOptions o) {
    return o.excludeNodes().contains(n.name()) || o.excludeOpTypes().contains(n.opType());
  }

  private static boolean feedsLayerNorm(String tensor, Map<String, List<Node>> consumers) {
    for (Node c : consumers.getOrDefault(tensor, List.of())) {
      String op = c.opType();
      if (op.equals("LayerNormalization") || op.equals("ReduceMean")) {
        return true;
      }
    }
    return false;
  }

  /**
   * The output-channel axis of a weight: 0 for Conv, the last axis of MatMul's B, 0 or 1 for Gemm's
   * B by transB; -1 (per tensor) for a constant A.
   */
  private static int weightAxis(OnnxModel model, Node n, int input) {
    int rank = TensorProtos.dims(model.initializers().get(n.input(input))).length;
    if (input == 0 || rank < 2) {
      return n.opType().equals("Conv") && input == 1 ? 0 : -1;
    }
    return switch (n.opType()) {
      case "Conv" -> 0;
      case "Gemm" -> n.intAttribute("transB", 0) != 0 ? 0 : 1;
      default -> rank - 1;
    };
  }
}
