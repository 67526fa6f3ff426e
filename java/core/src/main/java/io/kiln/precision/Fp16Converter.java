package io.kiln.precision;

import io.kiln.Float16;
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
 * Converts a float32 graph to float16: initializers and activations become FLOAT16, except around
 * numerically sensitive nodes, which stay FLOAT32 with Casts only where a tensor crosses between
 * the two regions. Model inputs and outputs keep their types by default.
 *
 * <pre>{@code
 * Fp16Converter.Result r = new Fp16Converter(Fp16Converter.Options.defaults()).convert(model);
 * r.model().save(out);  r.clamps().forEach(System.err::println);
 * }</pre>
 */
public final class Fp16Converter {
  /** Op types kept in float32 by default. */
  public static final Set<String> DEFAULT_FP32_OPS =
      Set.of(
          "LayerNormalization",
          "Softmax",
          "LogSoftmax",
          "ReduceMean",
          "ReduceSum",
          "ReduceSumSquare",
          "ReduceMax",
          "ReduceMin",
          "ReduceProd",
          "ReduceL1",
          "ReduceL2",
          "ReduceLogSum",
          "ReduceLogSumExp",
          "Pow",
          "Exp",
          "Log",
          "Range",
          "CumSum",
          "TopK",
          "Resize");

  /** Inputs of these ops may be of any type; they never need a boundary Cast. */
  private static final Set<String> TYPE_AGNOSTIC = Set.of("Cast", "Shape", "Size", "CastLike");

  /**
   * Conversion settings.
   *
   * @param fp32Ops op types kept in float32
   * @param fp32Nodes node names kept in float32
   * @param keepDecomposedLayerNorm keep ReduceMean-Sub-Pow-...-Div layer norm patterns in float32
   * @param keepIoTypes leave model inputs and outputs float32
   */
  public record Options(
      Set<String> fp32Ops,
      Set<String> fp32Nodes,
      boolean keepDecomposedLayerNorm,
      boolean keepIoTypes) {
    public Options {
      fp32Ops = Set.copyOf(fp32Ops);
      fp32Nodes = Set.copyOf(fp32Nodes);
    }

    public static Options defaults() {
      return new Options(DEFAULT_FP32_OPS, Set.of(), true, true);
    }

    public Options withFp32Nodes(Set<String> names) {
      return new Options(fp32Ops, names, keepDecomposedLayerNorm, keepIoTypes);
    }

    public Options withFp32Ops(Set<String> ops) {
      return new Options(ops, fp32Nodes, keepDecomposedLayerNorm, keepIoTypes);
    }

    /** A stable text of every setting, for cache keys. */
    public String key() {
      return new java.util.TreeSet<>(fp32Ops)
          + "|"
          + new java.util.TreeSet<>(fp32Nodes)
          + "|"
          + keepDecomposedLayerNorm
          + "|"
          + keepIoTypes;
    }
  }

  /** A constant that did not fit float16: how many values were clamped and the largest |x|. */
  public record Clamp(String tensor, int count, float maxAbs) {
    @Override
    public String toString() {
      return "clamped " + count + " value(s) of " + tensor + " to +-65504 (max |x| " + maxAbs + ")";
    }
  }

  /** The converted model, every clamp, the nodes left in float32 and the Casts inserted. */
  public record Result(OnnxModel model, List<Clamp> clamps, Set<String> fp32Nodes, int casts) {}

  private final Options options;

  public Fp16Converter(Options options) {
    this.options = options;
  }

  /**
   * The {@code auto} mode: runs the float32 model over calibration data and returns the names of
   * nodes with any float output beyond {@code bound} in magnitude, to keep in float32.
   */
  public static Set<String> nodesBeyond(
      OnnxModel model, CalibrationData data, float bound, Progress progress) {
    Map<String, Integer> types = tensorTypes(model.copy().inferShapes());
    Map<String, String> producer = new LinkedHashMap<>();
    for (Node n : model.nodes()) {
      if (n.opType().equals("Constant")) {
        continue;
      }
      for (String o : n.outputs()) {
        if (types.getOrDefault(o, 0) == TensorProtos.FLOAT) {
          producer.put(o, n.name());
        }
      }
    }
    Map<String, Float> max = new HashMap<>();
    try (ActivationObserver obs = new ActivationObserver(model, producer.keySet(), 0)) {
      obs.observe(
          data,
          (t, o) -> {
            float m = max.getOrDefault(t, 0f);
            for (float x : o.data()) {
              float a = Math.abs(x);
              m = Float.isNaN(a) ? Float.POSITIVE_INFINITY : Math.max(m, a);
            }
            max.put(t, m);
          },
          "fp16-range",
          progress);
    }
    Set<String> out = new LinkedHashSet<>();
    producer.forEach(
        (t, node) -> {
          if (max.getOrDefault(t, 0f) > bound) {
            out.add(node);
          }
        });
    return out;
  }

  public Result convert(OnnxModel source) {
    for (Node n : source.nodes()) {
      if (n.hasSubgraph()) {
        // Subgraphs read outer tensors by name; retyping those would need the bodies converted too.
        throw new io.kiln.ModelException(
            "FP16 conversion does not support control-flow subgraphs ("
                + n.opType()
                + " "
                + n.name()
                + ")");
      }
    }
    OnnxModel m = source.copy();
    constantsToInitializers(m);
    m.inferShapes();
    Map<String, Integer> types = tensorTypes(m);
    List<Node> nodes = m.nodes();
    Map<String, List<Node>> consumers = new HashMap<>();
    for (Node n : nodes) {
      for (String in : n.inputs()) {
        consumers.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
      }
    }
    Set<Node> fp32 = new HashSet<>();
    for (Node n : nodes) {
      if (options.fp32Ops().contains(n.opType()) || options.fp32Nodes().contains(n.name())) {
        fp32.add(n);
      }
    }
    if (options.keepDecomposedLayerNorm()) {
      fp32.addAll(decomposedLayerNorms(nodes, consumers));
    }

    // Which precision each float tensor has after conversion: true = float16.
    Map<String, Boolean> half = new HashMap<>();
    for (String in : m.inputNames()) {
      if (types.getOrDefault(in, 0) == TensorProtos.FLOAT) {
        half.put(in, !options.keepIoTypes());
      }
    }
    List<Clamp> clamps = new ArrayList<>();
    Map<String, Proto> inits = m.initializers();
    Map<String, String> halfCopies = new HashMap<>();
    for (Map.Entry<String, Proto> e : inits.entrySet()) {
      Proto t = e.getValue();
      if (TensorProtos.dataType(t) != TensorProtos.FLOAT) {
        continue;
      }
      boolean anyHalf = false;
      boolean anyFull = false;
      for (Node c : consumers.getOrDefault(e.getKey(), List.of())) {
        if (TYPE_AGNOSTIC.contains(c.opType())) {
          continue;
        }
        if (fp32.contains(c)) {
          anyFull = true;
        } else {
          anyHalf = true;
        }
      }
      if (anyHalf && !anyFull) {
        m.replaceInitializer(e.getKey(), toHalf(t, e.getKey(), clamps));
        half.put(e.getKey(), true);
      } else {
        half.put(e.getKey(), false);
        if (anyHalf) {
          String copy = e.getKey() + "_fp16";
          m.addInitializer(toHalf(t, copy, clamps));
          halfCopies.put(e.getKey(), copy);
        }
      }
    }

    List<Node> out = new ArrayList<>();
    Map<String, String> casts = new HashMap<>();
    int castCount = 0;
    for (Node n : nodes) {
      boolean toHalf = !fp32.contains(n);
      if (!TYPE_AGNOSTIC.contains(n.opType())) {
        List<String> inputs = n.inputs();
        for (int i = 0; i < inputs.size(); i++) {
          String in = inputs.get(i);
          Boolean isHalf = half.get(in);
          if (in.isEmpty() || isHalf == null || isHalf == toHalf) {
            continue;
          }
          if (toHalf && halfCopies.containsKey(in)) {
            n.setInput(i, halfCopies.get(in));
            continue;
          }
          String key = in + (toHalf ? "_fp16" : "_fp32");
          if (!casts.containsKey(key)) {
            out.add(cast(in, key, toHalf));
            casts.put(key, key);
            castCount++;
          }
          n.setInput(i, key);
        }
      }
      if (toHalf) {
        retypeAttributes(n, clamps);
      }
      for (String o : n.outputs()) {
        int type = types.getOrDefault(o, 0);
        if (n.opType().equals("Cast")) {
          long to = n.intAttribute("to", 0);
          if (to == TensorProtos.FLOAT || to == TensorProtos.FLOAT16) {
            half.put(o, to == TensorProtos.FLOAT16);
          }
        } else if (type == TensorProtos.FLOAT) {
          half.put(o, toHalf);
        }
      }
      out.add(n);
    }

    // Graph outputs: cast back to float32, or declare float16.
    for (Proto vi : m.graphOutputs()) {
      String name = OnnxModel.name(vi);
      if (!Boolean.TRUE.equals(half.get(name))) {
        continue;
      }
      if (!options.keepIoTypes()) {
        OnnxModel.setElemType(vi, TensorProtos.FLOAT16);
        continue;
      }
      String inner = name + "_fp16_output";
      rename(out, name, inner);
      out.add(cast(inner, name, false));
      castCount++;
    }
    if (!options.keepIoTypes()) {
      for (Proto vi : m.graphInputs()) {
        if (OnnxModel.elemType(vi) == TensorProtos.FLOAT) {
          OnnxModel.setElemType(vi, TensorProtos.FLOAT16);
        }
      }
    }
    m.setNodes(out);
    m.clearValueInfo();
    Set<String> kept = new LinkedHashSet<>();
    for (Node n : nodes) {
      if (fp32.contains(n)) {
        kept.add(n.name());
      }
    }
    return new Result(m, clamps, kept, castCount);
  }

  /** Renames tensor {@code from} to {@code to} wherever the nodes write or read it. */
  static void rename(List<Node> nodes, String from, String to) {
    for (Node n : nodes) {
      for (int i = 0; i < n.outputs().size(); i++) {
        if (n.output(i).equals(from)) {
          n.setOutput(i, to);
        }
      }
      for (int i = 0; i < n.inputs().size(); i++) {
        if (n.input(i).equals(from)) {
          n.setInput(i, to);
        }
      }
    }
  }

  static Node cast(String from, String to, boolean toHalf) {
    Node c = Node.create("Cast", to + "_Cast", List.of(from), List.of(to));
    c.setIntAttribute("to", toHalf ? TensorProtos.FLOAT16 : TensorProtos.FLOAT);
    return c;
  }

  /** Cast targets and float constant attributes of a node that now computes in float16. */
  static void retypeAttributes(Node n, List<Clamp> clamps) {
    if (n.opType().equals("Cast") && n.intAttribute("to", 0) == TensorProtos.FLOAT) {
      n.setIntAttribute("to", TensorProtos.FLOAT16);
    }
    if (n.opType().equals("ConstantOfShape")) {
      Proto v = n.tensorAttribute("value");
      if (v != null && TensorProtos.dataType(v) == TensorProtos.FLOAT) {
        n.setTensorAttribute("value", toHalf(v, TensorProtos.name(v), clamps));
      }
    }
  }

  /** A FLOAT16 copy of a FLOAT tensor; out-of-range values clamp to +-65504 and are reported. */
  static Proto toHalf(Proto t, String name, List<Clamp> clamps) {
    float[] v = TensorProtos.floats(t);
    int clamped = 0;
    float maxAbs = 0;
    for (int i = 0; i < v.length; i++) {
      float a = Math.abs(v[i]);
      if (a > Float16.MAX_HALF && !Float.isNaN(a)) {
        clamped++;
        maxAbs = Math.max(maxAbs, a);
        v[i] = Math.copySign(Float16.MAX_HALF, v[i]);
      }
    }
    if (clamped > 0) {
      clamps.add(new Clamp(name, clamped, maxAbs));
    }
    return TensorProtos.ofHalves(name, v, TensorProtos.dims(t));
  }

  /** Constant nodes with a tensor value become initializers, so one rule covers both. */
  private static void constantsToInitializers(OnnxModel m) {
    List<Node> kept = new ArrayList<>();
    for (Node n : m.nodes()) {
      Proto value = n.opType().equals("Constant") ? n.tensorAttribute("value") : null;
      if (value != null && n.outputs().size() == 1) {
        Proto t = Proto.parse(value.encode());
        t.setString(8, n.output(0));
        m.addInitializer(t);
      } else {
        kept.add(n);
      }
    }
    m.setNodes(kept);
  }

  /** Element types of every tensor the model knows a type for (after shape inference). */
  static Map<String, Integer> tensorTypes(OnnxModel m) {
    Map<String, Integer> types = new HashMap<>();
    m.valueInfos().forEach((name, vi) -> types.put(name, OnnxModel.elemType(vi)));
    m.initializers().forEach((name, t) -> types.put(name, TensorProtos.dataType(t)));
    return types;
  }

  /**
   * Nodes of layer norms written out as ReduceMean(x), Sub(x, mean), Pow/Mul, ReduceMean, Add(eps),
   * Sqrt, Div (then the scale Mul and shift Add): everything from the first ReduceMean to the Div
   * and its affine tail.
   */
  static Set<Node> decomposedLayerNorms(List<Node> nodes, Map<String, List<Node>> consumers) {
    Set<String> normOps =
        Set.of("Sub", "Pow", "Mul", "ReduceMean", "Add", "Sqrt", "Div", "Reciprocal");
    Set<Node> out = new HashSet<>();
    for (Node mean : nodes) {
      if (!mean.opType().equals("ReduceMean")) {
        continue;
      }
      String x = mean.input(0);
      for (Node sub : consumers.getOrDefault(mean.output(0), List.of())) {
        if (!sub.opType().equals("Sub") || !sub.input(0).equals(x)) {
          continue;
        }
        Set<Node> found = new LinkedHashSet<>(List.of(mean, sub));
        List<Node> frontier = new ArrayList<>(List.of(sub));
        Node div = null;
        for (int depth = 0; depth < 6 && !frontier.isEmpty(); depth++) {
          List<Node> next = new ArrayList<>();
          for (Node f : frontier) {
            for (Node c : consumers.getOrDefault(f.output(0), List.of())) {
              if (!normOps.contains(c.opType()) || !found.add(c)) {
                continue;
              }
              if (c.opType().equals("Div")) {
                div = c; // the normalized value: stop here
              } else {
                next.add(c);
              }
            }
          }
          frontier = next;
        }
        if (div == null) {
          continue;
        }
        out.addAll(found);
        // The affine tail: Mul by gamma then Add beta.
        Node tail = div;
        for (String op : List.of("Mul", "Add")) {
          List<Node> cs = consumers.getOrDefault(tail.output(0), List.of());
          if (cs.size() == 1 && cs.get(0).opType().equals(op)) {
            tail = cs.get(0);
            out.add(tail);
          } else {
            break;
          }
        }
      }
    }
    return out;
  }
}
