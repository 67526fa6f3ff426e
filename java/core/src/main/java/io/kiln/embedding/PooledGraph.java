package io.kiln.embedding;

import io.kiln.model.ModelSource;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.ToIntFunction;

/**
 * Pooling as part of the encoder's graph, so that a run returns one {@code [batch, hidden]} vector
 * per text instead of every token's state: on a GPU the states never leave the device, and the host
 * neither copies nor scans them. The nodes compute exactly what {@link Pooling#pool} does on the
 * host, over the attention mask with the first {@code unpooledPrefix} tokens left out; the sums are
 * ReduceSum nodes, which FP16 conversion keeps in float32. Normalization and Matryoshka truncation
 * stay on the host, where a vector costs nothing.
 */
final class PooledGraph {
  /** The graph's one output: the pooled vectors, float32 {@code [batch, hidden]}. */
  static final String OUTPUT = "kiln_pooled_embedding";

  /** CumSum, which the prompt exclusion and last-token pooling need, came with opset 11. */
  static final long MIN_OPSET = 11;

  private static final String MASK = "attention_mask";
  private static final String PREFIX = "kiln_pool_";

  private final OnnxModel model;
  private final long opset;
  private final List<Node> nodes;
  private int counter;

  private PooledGraph(OnnxModel model) {
    this.model = model;
    this.opset = model.opset();
    this.nodes = new ArrayList<>(model.nodes());
  }

  /** What the embedder pools: the mode, and the leading tokens (an excluded prompt) it skips. */
  record Request(Pooling pooling, int unpooledPrefix) {}

  /** The names an encoder's token states go by, most likely first; else its first 3-d output. */
  static final List<String> HIDDEN_OUTPUT_NAMES = List.of("last_hidden_state", "token_embeddings");

  /**
   * The model with the pooling of its token states as its only output, or null where that cannot be
   * done and the host pools instead: an opset below {@link #MIN_OPSET}, a model too large to edit
   * in memory, token states that are not {@code [batch, sequence, known size]} float, or no int64
   * attention mask.
   */
  static ModelSource append(ModelSource source, Request request) {
    OnnxModel model = OnnxModel.of(source);
    if (model.opset() < MIN_OPSET || !model.fitsInMemory()) {
      return null;
    }
    Proto hiddenInfo = hiddenOutput(model);
    Proto maskInfo = model.valueInfos().get(MASK);
    long[] dims = hiddenInfo == null ? null : OnnxModel.dims(hiddenInfo);
    int hiddenType = hiddenInfo == null ? 0 : OnnxModel.elemType(hiddenInfo);
    if (dims == null
        || dims.length != 3
        || dims[2] <= 0
        || (hiddenType != TensorProtos.FLOAT && hiddenType != TensorProtos.FLOAT16)
        || maskInfo == null
        || OnnxModel.elemType(maskInfo) != TensorProtos.INT64) {
      return null;
    }
    String hiddenOutput = OnnxModel.name(hiddenInfo);
    PooledGraph graph = new PooledGraph(model);
    String hidden =
        hiddenType == TensorProtos.FLOAT
            ? hiddenOutput
            : graph.op("Cast", List.of(hiddenOutput), n -> n.setIntAttribute("to", 1));
    graph.pool(hidden, request.pooling(), request.unpooledPrefix());
    model.setNodes(graph.nodes);
    model.setOutputs(
        List.of(OnnxModel.valueInfo(OUTPUT, TensorProtos.FLOAT, "kiln_pooled_", -1, dims[2])));
    return ModelSource.of(source.name() + " (pooled in graph)", model.toBytes());
  }

  private static Proto hiddenOutput(OnnxModel model) {
    return tokenStates(
        model.graphOutputs(),
        OnnxModel::name,
        o -> {
          long[] dims = OnnxModel.dims(o);
          return dims == null ? -1 : dims.length;
        });
  }

  /**
   * Of a model's outputs, the one holding the token states: the first of {@link
   * #HIDDEN_OUTPUT_NAMES} it has, else its first 3-d output; null where it has neither.
   */
  static <T> T tokenStates(List<T> outputs, Function<T, String> name, ToIntFunction<T> rank) {
    for (String wanted : HIDDEN_OUTPUT_NAMES) {
      for (T o : outputs) {
        if (name.apply(o).equals(wanted)) {
          return o;
        }
      }
    }
    for (T o : outputs) {
      if (rank.applyAsInt(o) == 3) {
        return o;
      }
    }
    return null;
  }

  /** Appends the pooling nodes, the last of which writes {@link #OUTPUT}. */
  private void pool(String hidden, Pooling pooling, int unpooledPrefix) {
    String mask = op("Cast", List.of(MASK), n -> n.setIntAttribute("to", 1));
    if (unpooledPrefix > 0) {
      // Right-padded masks: a kept token's running count is its position + 1.
      String position = cumulative(mask);
      String kept = op("Greater", List.of(position, scalar(unpooledPrefix)));
      mask = op("Mul", mask, op("Cast", List.of(kept), n -> n.setIntAttribute("to", 1)));
    }
    String column = op("Reshape", mask, longs(0, -1, 1)); // [batch, sequence, 1]
    String count = reduce("ReduceSum", mask, true); // [batch, 1]
    String counted = op("Max", count, scalar(1e-9f));
    String result =
        switch (pooling) {
          case CLS ->
              op("Gather", List.of(hidden, longScalar(0)), n -> n.setIntAttribute("axis", 1));
          case MEAN -> op("Div", reduce("ReduceSum", op("Mul", hidden, column), false), counted);
          case MEAN_SQRT_LEN ->
              op(
                  "Div",
                  reduce("ReduceSum", op("Mul", hidden, column), false),
                  op("Sqrt", List.of(counted)));
          case MAX -> {
            // Left-out tokens sit far below any state, as sentence-transformers does it.
            String floor = op("Mul", op("Sub", column, scalar(1f)), scalar(1e9f));
            yield reduce("ReduceMax", op("Add", op("Mul", hidden, column), floor), false);
          }
          case LAST_TOKEN -> {
            // The kept token whose running count is the row's count, and nothing after it.
            String last = op("Equal", cumulative(mask), count);
            String oneHot =
                op("Mul", op("Cast", List.of(last), n -> n.setIntAttribute("to", 1)), mask);
            String weights = op("Reshape", oneHot, longs(0, -1, 1));
            yield reduce("ReduceSum", op("Mul", hidden, weights), false);
          }
        };
    nodes.add(Node.create("Identity", PREFIX + "output", List.of(result), List.of(OUTPUT)));
  }

  /** The running sum of a float mask along the sequence. */
  private String cumulative(String mask) {
    return op("CumSum", mask, longScalar(1));
  }

  /**
   * ReduceSum or ReduceMax over axis 1: the axes are an attribute before opset 13 (ReduceSum) or 18
   * (ReduceMax), an input from then on.
   */
  private String reduce(String op, String x, boolean keepDims) {
    long inputSince = op.equals("ReduceSum") ? 13 : 18;
    boolean axesInput = opset >= inputSince;
    List<String> inputs = axesInput ? List.of(x, longs(1)) : List.of(x);
    return op(
        op,
        inputs,
        n -> {
          n.setIntAttribute("keepdims", keepDims ? 1 : 0);
          if (!axesInput) {
            n.setIntsAttribute("axes", 1);
          }
        });
  }

  private String op(String op, String a, String b) {
    return op(op, List.of(a, b));
  }

  private String op(String op, List<String> inputs) {
    return op(op, inputs, n -> {});
  }

  private String op(String op, List<String> inputs, Consumer<Node> attributes) {
    String name = PREFIX + op.toLowerCase(Locale.ROOT) + "_" + counter++;
    Node node = Node.create(op, name, inputs, List.of(name + "_out"));
    attributes.accept(node);
    nodes.add(node);
    return name + "_out";
  }

  private String scalar(float value) {
    return constant(name -> TensorProtos.ofFloats(name, new float[] {value}));
  }

  private String longScalar(long value) {
    return constant(name -> TensorProtos.ofLongs(name, new long[] {value}));
  }

  private String longs(long... values) {
    return constant(name -> TensorProtos.ofLongs(name, values, values.length));
  }

  /** A fresh initializer made by {@code tensor} from its name; returns the name. */
  private String constant(Function<String, Proto> tensor) {
    String name = PREFIX + "const_" + counter++;
    model.addInitializer(tensor.apply(name));
    return name;
  }
}
