package io.kiln.precision;

import io.kiln.ModelException;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The float16 form of a Q/DQ graph, for a strongly typed TensorRT build: every float tensor between
 * the quantized ones becomes float16, INT8 weights stay INT8, and the graph moves to opset 19, the
 * first whose Q/DQ take float16 scales. Float model inputs and outputs stay float32 behind one Cast
 * each, so callers see the same types as in the float32 graph.
 *
 * <pre>{@code
 * Float16Qdq.Result r = Float16Qdq.convert(quantizer.quantize(model, cache));
 * r.model().save(out);  r.clamps().forEach(System.err::println);
 * }</pre>
 */
public final class Float16Qdq {
  /** The first opset whose QuantizeLinear and DequantizeLinear accept float16. */
  public static final int OPSET = 19;

  /** The converted model and every constant that had to be clamped to the float16 range. */
  public record Result(OnnxModel model, List<Fp16Converter.Clamp> clamps) {}

  private Float16Qdq() {}

  public static Result convert(OnnxModel qdq) {
    if (qdq.nodes().stream().noneMatch(n -> n.opType().equals("QuantizeLinear"))) {
      throw new ModelException("no QuantizeLinear in the graph: quantize it first");
    }
    OnnxModel m = qdq.opset() >= OPSET ? qdq.copy() : qdq.convertOpset(OPSET);
    List<Fp16Converter.Clamp> clamps = new ArrayList<>();
    for (Map.Entry<String, Proto> e : m.initializers().entrySet()) {
      if (TensorProtos.dataType(e.getValue()) == TensorProtos.FLOAT) {
        m.replaceInitializer(e.getKey(), Fp16Converter.toHalf(e.getValue(), e.getKey(), clamps));
      }
    }
    for (Node n : m.nodes()) {
      Fp16Converter.retypeAttributes(n, clamps); // Cast targets, ConstantOfShape values
      Proto v = n.opType().equals("Constant") ? n.tensorAttribute("value") : null;
      if (v != null && TensorProtos.dataType(v) == TensorProtos.FLOAT) {
        n.setTensorAttribute("value", Fp16Converter.toHalf(v, n.name(), clamps));
      }
    }
    keepFloat32Io(m);
    m.clearValueInfo();
    return new Result(m, clamps);
  }

  /** A Cast to float16 after each float input and one to float32 before each float output. */
  private static void keepFloat32Io(OnnxModel m) {
    List<Node> nodes = m.nodes();
    List<Node> all = new ArrayList<>();
    for (Proto in : m.graphInputs()) {
      String name = OnnxModel.name(in);
      if (OnnxModel.elemType(in) == TensorProtos.FLOAT && !m.initializers().containsKey(name)) {
        Fp16Converter.rename(nodes, name, name + "_float16");
        all.add(Fp16Converter.cast(name, name + "_float16", true));
      }
    }
    all.addAll(nodes);
    for (Proto out : m.graphOutputs()) {
      String name = OnnxModel.name(out);
      if (OnnxModel.elemType(out) == TensorProtos.FLOAT) {
        Fp16Converter.rename(nodes, name, name + "_float16");
        all.add(Fp16Converter.cast(name + "_float16", name, false));
      }
    }
    m.setNodes(all);
  }
}
