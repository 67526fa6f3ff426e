package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * INT8 post-training quantization with explicit QuantizeLinear/DequantizeLinear pairs, the form
 * TensorRT builds strongly typed and ONNX Runtime runs with integer kernels.
 *
 * <pre>{@code
 * Quantizer q = new Quantizer(QuantizerOptions.defaults().withMethod(CalibrationMethod.ENTROPY));
 * CalibrationCache cache = q.calibrate(model, sha256, data, Progress.NONE);
 * OnnxModel int8 = q.quantize(model, cache); // the same graph every time for the same cache
 * }</pre>
 *
 * Weights are int8 initializers quantized per output channel, symmetric; activations are
 * per-tensor, symmetric, zero point 0. Models below opset 13 are first converted to opset 13 (the
 * first with per-channel DequantizeLinear).
 */
public final class Quantizer {
  static final int MIN_OPSET = 13;

  private final QuantizerOptions options;

  public Quantizer(QuantizerOptions options) {
    this.options = options;
  }

  public QuantizerOptions options() {
    return options;
  }

  /** The model at an opset that has per-channel Q/DQ (a converted copy when needed). */
  public static OnnxModel prepare(OnnxModel model) {
    long opset = model.opset();
    if (opset <= 0) {
      throw new ModelException("model imports no default-domain opset");
    }
    return opset >= MIN_OPSET ? model.copy() : model.convertOpset(MIN_OPSET);
  }

  /**
   * Every exclusion must name a node or op type of the model and every unsmoothed pattern must
   * match a node, so that a misspelt name fails here instead of silently quantizing what it meant
   * to keep.
   */
  private void requireNamesIn(OnnxModel model) {
    Set<String> names = new HashSet<>();
    Set<String> ops = new HashSet<>();
    for (Node n : model.nodes()) {
      names.add(n.name());
      ops.add(n.opType());
    }
    Set<String> excluded = new java.util.TreeSet<>(options.excludeNodes());
    excluded.addAll(options.excludeOpTypes());
    for (String e : excluded) {
      if (!names.contains(e) && !ops.contains(e)) {
        throw new InvalidInputException(
            "excluded '" + e + "' is neither a node name nor an op type of the model");
      }
    }
    for (String u : new java.util.TreeSet<>(options.unsmoothedNodes())) {
      java.util.regex.Pattern g = Smoother.glob(u);
      if (names.stream().noneMatch(n -> g.matcher(n).matches())) {
        throw new InvalidInputException("unsmoothed pattern '" + u + "' matches no node name");
      }
    }
  }

  /** Calibrates the activations this quantizer would place Q/DQ on. */
  public CalibrationCache calibrate(
      OnnxModel model, String modelSha256, CalibrationData data, Progress progress) {
    OnnxModel prepared = prepare(model);
    requireNamesIn(prepared);
    Calibrator calibrator = new Calibrator(options.method(), options.percentile(), progress);
    Map<String, float[]> channels = Map.of();
    OnnxModel target = prepared;
    if (options.smoothing() > 0) {
      channels = calibrator.channelMax(prepared, Smoother.activations(prepared, options), data);
      target = Smoother.apply(prepared, channels, options);
    }
    QdqPlacement placement = QdqPlacement.plan(target, options);
    if (placement.edges().isEmpty()) {
      throw new ModelException("nothing to quantize: no MatMul, Gemm or Conv outside exclusions");
    }
    return calibrator
        .calibrate(target, modelSha256, placement.activations(), data)
        .withChannels(channels);
  }

  /** The quantized graph; the same cache always gives the same bytes. */
  public OnnxModel quantize(OnnxModel model, CalibrationCache cache) {
    OnnxModel prepared = prepare(model);
    requireNamesIn(prepared);
    OnnxModel m =
        options.smoothing() > 0 ? Smoother.apply(prepared, cache.channels(), options) : prepared;
    QdqPlacement placement = QdqPlacement.plan(m, options);
    if (placement.edges().isEmpty()) {
      throw new ModelException("nothing to quantize: no MatMul, Gemm or Conv outside exclusions");
    }
    List<Node> nodes = m.nodes();
    Map<String, Proto> inits = m.initializers();
    Map<Integer, List<QdqPlacement.Edge>> byNode = new HashMap<>();
    for (QdqPlacement.Edge e : placement.edges()) {
      byNode.computeIfAbsent(e.node(), k -> new ArrayList<>()).add(e);
    }
    Map<String, String> dequantized = new LinkedHashMap<>();
    Map<String, Integer> activationUses = new HashMap<>();
    Set<String> quantizedWeights = new HashSet<>();
    List<Node> out = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      for (QdqPlacement.Edge e : byNode.getOrDefault(i, List.of())) {
        String dq;
        if (e.weight()) {
          dq = dequantized.get(e.tensor());
          if (dq == null) {
            dq = quantizeWeight(m, inits.get(e.tensor()), e.axis(), out);
            dequantized.put(e.tensor(), dq);
            quantizedWeights.add(e.tensor());
          }
        } else if (options.sharedQdq()) {
          dq =
              dequantized.computeIfAbsent(
                  e.tensor(),
                  t -> insertActivationQdq(m, t, cache.amax(t), 0, options.activationType(), out));
        } else {
          // One Q/DQ pair per consuming edge: ONNX Runtime folds a pair into the consumer's
          // integer kernel only when the pair has that single consumer.
          int use = activationUses.merge(e.tensor(), 1, Integer::sum) - 1;
          dq =
              insertActivationQdq(
                  m, e.tensor(), cache.amax(e.tensor()), use, options.activationType(), out);
        }
        n.setInput(e.input(), dq);
      }
      out.add(n);
    }
    // A float weight stays only if something unquantized still reads it.
    Set<String> stillRead = new HashSet<>();
    for (Node n : out) {
      stillRead.addAll(n.inputs());
    }
    for (String w : quantizedWeights) {
      if (!stillRead.contains(w)) {
        m.removeInitializer(w);
      }
    }
    m.setNodes(out);
    m.clearValueInfo();
    return m;
  }

  private static String insertActivationQdq(
      OnnxModel m, String tensor, float amax, int use, ActivationType type, List<Node> out) {
    String scale = tensor + "_scale";
    String zero = tensor + "_zero_point";
    if (use == 0) {
      m.addInitializer(TensorProtos.ofFloats(scale, new float[] {amax / 127f}));
      m.addInitializer(
          type == ActivationType.INT8
              ? TensorProtos.ofInt8(zero, new byte[] {0})
              : TensorProtos.ofUint8(zero, new byte[] {(byte) 128}));
    }
    String suffix = use == 0 ? "" : "_" + use;
    String q = tensor + "_quantized" + suffix;
    String dq = tensor + "_dequantized" + suffix;
    out.add(
        Node.create(
            "QuantizeLinear",
            tensor + "_QuantizeLinear" + suffix,
            List.of(tensor, scale, zero),
            List.of(q)));
    out.add(
        Node.create(
            "DequantizeLinear",
            tensor + "_DequantizeLinear" + suffix,
            List.of(q, scale, zero),
            List.of(dq)));
    return dq;
  }

  /** Replaces a float weight by int8 values, scales and a DequantizeLinear; returns its output. */
  private static String quantizeWeight(OnnxModel m, Proto weight, int axis, List<Node> out) {
    String name = TensorProtos.name(weight);
    float[] w = TensorProtos.floats(weight);
    long[] dims = TensorProtos.dims(weight);
    int channels = axis < 0 ? 1 : (int) dims[axis];
    long stride = 1;
    for (int d = axis + 1; axis >= 0 && d < dims.length; d++) {
      stride *= dims[d];
    }
    float[] amax = new float[channels];
    for (int i = 0; i < w.length; i++) {
      int c = axis < 0 ? 0 : (int) ((i / stride) % channels);
      amax[c] = Math.max(amax[c], Math.abs(w[i]));
    }
    float[] scale = new float[channels];
    for (int c = 0; c < channels; c++) {
      scale[c] = amax[c] > 0 ? amax[c] / 127f : 1f;
    }
    byte[] q = new byte[w.length];
    for (int i = 0; i < w.length; i++) {
      int c = axis < 0 ? 0 : (int) ((i / stride) % channels);
      q[i] = (byte) Math.max(-127, Math.min(127, Math.round(w[i] / scale[c])));
    }
    String qName = name + "_quantized";
    String scaleName = name + "_scale";
    String zeroName = name + "_zero_point";
    m.addInitializer(TensorProtos.ofInt8(qName, q, dims));
    long[] scaleDims = axis < 0 ? new long[0] : new long[] {channels};
    m.addInitializer(TensorProtos.ofFloats(scaleName, scale, scaleDims));
    m.addInitializer(TensorProtos.ofInt8(zeroName, new byte[channels], scaleDims));
    String dq = name + "_dequantized";
    Node node =
        Node.create(
            "DequantizeLinear",
            name + "_DequantizeLinear",
            List.of(qName, scaleName, zeroName),
            List.of(dq));
    if (axis >= 0) {
      node.setIntAttribute("axis", axis);
    }
    out.add(node);
    return dq;
  }
}
