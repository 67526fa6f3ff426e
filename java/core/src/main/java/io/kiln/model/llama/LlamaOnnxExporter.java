package io.kiln.model.llama;

import static io.kiln.model.onnx.OnnxGraphBuilder.BOOL;
import static io.kiln.model.onnx.OnnxGraphBuilder.FLOAT;
import static io.kiln.model.onnx.OnnxGraphBuilder.INT64;

import io.kiln.ModelException;
import io.kiln.model.onnx.OnnxGraphBuilder;
import io.kiln.model.safetensors.SafetensorsModel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Exports a Llama-family decoder as an ONNX graph (opset 17, float32) with the Hugging Face Optimum
 * interface: {@code input_ids}, {@code attention_mask}, {@code position_ids} and {@code
 * past_key_values.N.key/value} in; {@code logits} and {@code present.N.key/value} out. Batch,
 * sequence and past lengths are dynamic; {@code attention_mask} covers past and new positions.
 */
public final class LlamaOnnxExporter {
  public static final int OPSET = 17;

  /** Above this many weight bytes, initializers go to an external data file. */
  public static final long EXTERNAL_DATA_THRESHOLD = 1_800_000_000L;

  private final SafetensorsModel st;
  private final LlamaConfig c;
  private final OnnxGraphBuilder g;
  private String cos;
  private String sin;
  private String attentionBias;

  private LlamaOnnxExporter(LlamaConfig config, SafetensorsModel weights, OnnxGraphBuilder graph) {
    this.st = weights;
    this.c = config;
    this.g = graph;
  }

  /**
   * Writes {@code outDir/model.onnx} (plus {@code model.onnx.data} when the weights are large or
   * {@code externalData} is set) and copies config.json beside it.
   */
  public static Path export(Path modelDirectory, Path outDir, boolean externalData) {
    LlamaConfig c = LlamaConfig.load(modelDirectory);
    long bytes =
        4L
            * ((long) c.vocabSize() * c.hiddenSize() * 2
                + (long) c.numLayers()
                    * ((long) c.hiddenSize() * (2L * c.queryDim() + 2L * c.kvDim())
                        + 3L * c.hiddenSize() * c.intermediateSize()));
    boolean external = externalData || bytes > EXTERNAL_DATA_THRESHOLD;
    try {
      Files.createDirectories(outDir);
    } catch (IOException e) {
      throw new ModelException("cannot create " + outDir + ": " + e.getMessage(), e);
    }
    Path model = outDir.resolve("model.onnx");
    // Weights stream from the memory-mapped safetensors one tensor at a time, so even models
    // larger than the heap export.
    try (SafetensorsModel weights = SafetensorsModel.open(modelDirectory);
        OnnxGraphBuilder graph =
            new OnnxGraphBuilder(
                "llama_decoder", OPSET, external ? outDir.resolve("model.onnx.data") : null)) {
      new LlamaOnnxExporter(c, weights, graph).build();
      graph.write(model, "kiln");
    }
    try {
      Files.copy(
          modelDirectory.resolve("config.json"),
          outDir.resolve("config.json"),
          StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new ModelException("cannot copy config.json to " + outDir + ": " + e.getMessage(), e);
    }
    return model;
  }

  /** A vector weight, as an initializer of the same name. */
  private String vector(String name, int size) {
    return g.floats(name, st.readFloats(name, size), size);
  }

  private void build() {
    int dim = c.hiddenSize();
    g.input("input_ids", INT64, "batch_size", "sequence_length");
    g.input("attention_mask", INT64, "batch_size", "total_sequence_length");
    g.input("position_ids", INT64, "batch_size", "sequence_length");
    for (int i = 0; i < c.numLayers(); i++) {
      for (String kind : new String[] {"key", "value"}) {
        g.input(
            "past_key_values." + i + "." + kind,
            FLOAT,
            "batch_size",
            (long) c.numKvHeads(),
            "past_sequence_length",
            (long) c.headDim());
      }
    }
    g.output("logits", FLOAT, "batch_size", "sequence_length", (long) c.vocabSize());
    for (int i = 0; i < c.numLayers(); i++) {
      for (String kind : new String[] {"key", "value"}) {
        g.output(
            "present." + i + "." + kind,
            FLOAT,
            "batch_size",
            (long) c.numKvHeads(),
            "total_sequence_length",
            (long) c.headDim());
      }
    }

    String embedding =
        g.floats(
            LlamaTensors.embedding(),
            st.readFloats(LlamaTensors.embedding(), c.vocabSize(), dim),
            c.vocabSize(),
            dim);
    String h = g.op("Gather", new String[] {embedding, "input_ids"}, "axis", 0L);
    ropeTables();
    maskBias();
    for (int i = 0; i < c.numLayers(); i++) {
      h = layer(i, h);
    }
    String normed = rmsnorm(h, vector(LlamaTensors.finalNorm(), dim));
    String head =
        st.contains(LlamaTensors.lmHead()) || !c.tieWordEmbeddings()
            ? LlamaTensors.lmHead()
            : LlamaTensors.embedding();
    String lmHead =
        g.transposed(
            LlamaTensors.lmHead() + ".T",
            LinearWeights.read(st, head, c.vocabSize(), dim),
            c.vocabSize(),
            dim);
    g.node("MatMul", new String[] {normed, lmHead}, new String[] {"logits"});
  }

  /** cos and sin of position * inverse frequency, shaped [batch, 1, seq, headDim]. */
  private void ropeTables() {
    double[] inv = c.inverseFrequencies();
    float[] invF = new float[inv.length];
    for (int i = 0; i < inv.length; i++) {
      invF[i] = (float) inv[i];
    }
    String invFreq = g.floats("rope.inv_freq", invF, invF.length);
    String positions = g.op("Cast", new String[] {"position_ids"}, "to", (long) FLOAT);
    String angles = g.op("Mul", g.op("Unsqueeze", positions, g.intVector(2)), invFreq);
    String full = g.op("Concat", new String[] {angles, angles}, "axis", -1L);
    cos = g.op("Unsqueeze", g.op("Cos", full), g.intVector(1));
    sin = g.op("Unsqueeze", g.op("Sin", full), g.intVector(1));
  }

  /**
   * Additive attention bias [batch, 1, seq, total]: 0 where a query may see a key (causal, within
   * the sliding window, not padding), the most negative float elsewhere.
   */
  private void maskBias() {
    String total =
        g.op(
            "Gather",
            new String[] {g.op("Shape", "attention_mask"), g.intScalar("const_one", 1)},
            "axis",
            0L);
    String seq = g.op("Gather", new String[] {g.op("Shape", "input_ids"), "const_one"}, "axis", 0L);
    String past = g.op("Sub", total, seq);
    String zero = g.intScalar("const_zero", 0);
    String keys =
        g.op("Unsqueeze", g.op("Range", new String[] {zero, total, "const_one"}), g.intVector(0));
    String queries =
        g.op("Unsqueeze", g.op("Range", new String[] {past, total, "const_one"}), g.intVector(1));
    String allowed = g.op("LessOrEqual", keys, queries);
    if (c.slidingWindow() > 0) {
      String oldest = g.op("Sub", queries, g.intScalar("const_window", c.slidingWindow()));
      allowed = g.op("And", allowed, g.op("Greater", keys, oldest));
    }
    String notPadding =
        g.op(
            "Cast",
            new String[] {g.op("Unsqueeze", "attention_mask", g.intVector(1, 2))},
            "to",
            (long) BOOL);
    allowed = g.op("And", g.op("Unsqueeze", allowed, g.intVector(0, 1)), notPadding);
    attentionBias =
        g.op(
            "Where",
            new String[] {
              allowed, g.floatScalar("const_f0", 0f), g.floatScalar("const_fmin", -Float.MAX_VALUE)
            });
  }

  private String layer(int i, String h) {
    LlamaTensors.Layer names = LlamaTensors.layer(i);
    int dim = c.hiddenSize();
    int hd = c.headDim();
    boolean qkvBias = c.qkvBias();

    // Attention block
    String x = rmsnorm(h, vector(names.attentionNorm(), dim));
    String q =
        heads(
            linear(x, names.qProj(), qkvBias ? names.qProjBias() : null, c.queryDim(), dim),
            c.numHeads());
    String k =
        heads(
            linear(x, names.kProj(), qkvBias ? names.kProjBias() : null, c.kvDim(), dim),
            c.numKvHeads());
    String v =
        heads(
            linear(x, names.vProj(), qkvBias ? names.vProjBias() : null, c.kvDim(), dim),
            c.numKvHeads());
    q = rope(q);
    k = rope(k);
    String keys = "present." + i + ".key";
    String values = "present." + i + ".value";
    g.node(
        "Concat",
        new String[] {"past_key_values." + i + ".key", k},
        new String[] {keys},
        "axis",
        2L);
    g.node(
        "Concat",
        new String[] {"past_key_values." + i + ".value", v},
        new String[] {values},
        "axis",
        2L);
    String kAll = repeatKv(keys);
    String vAll = repeatKv(values);
    String scores =
        g.op("MatMul", q, g.op("Transpose", new String[] {kAll}, "perm", new long[] {0, 1, 3, 2}));
    scores = g.op("Mul", scores, g.floatScalar("attention_scale", (float) (1.0 / Math.sqrt(hd))));
    String probs = g.op("Softmax", new String[] {g.op("Add", scores, attentionBias)}, "axis", -1L);
    String context = g.op("MatMul", probs, vAll);
    context = g.op("Transpose", new String[] {context}, "perm", new long[] {0, 2, 1, 3});
    context = g.op("Reshape", context, g.intVector(0, 0, c.queryDim()));
    String outputBias = c.outputBias() ? names.oProjBias() : null;
    h = g.op("Add", h, linear(context, names.oProj(), outputBias, dim, c.queryDim()));

    // MLP block
    x = rmsnorm(h, vector(names.mlpNorm(), dim));
    boolean mlpBias = c.mlpBias();
    int ff = c.intermediateSize();
    String gate = linear(x, names.gateProj(), mlpBias ? names.gateProjBias() : null, ff, dim);
    String up = linear(x, names.upProj(), mlpBias ? names.upProjBias() : null, ff, dim);
    String act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up);
    return g.op(
        "Add", h, linear(act, names.downProj(), mlpBias ? names.downProjBias() : null, dim, ff));
  }

  /**
   * x . W^T (+ b), W read as {@code [out][in]} and stored transposed for MatMul; {@code biasName}
   * is null where the model has no bias.
   */
  private String linear(String x, String weightName, String biasName, int out, int in) {
    float[] weight = LinearWeights.read(st, weightName, out, in);
    String y = g.op("MatMul", x, g.transposed(weightName + ".T", weight, out, in));
    return biasName == null ? y : g.op("Add", y, vector(biasName, out));
  }

  /** [batch, seq, heads*headDim] -> [batch, heads, seq, headDim]. */
  private String heads(String x, int heads) {
    String r = g.op("Reshape", x, g.intVector(0, 0, heads, c.headDim()));
    return g.op("Transpose", new String[] {r}, "perm", new long[] {0, 2, 1, 3});
  }

  /** x * cos + rotate_half(x) * sin, with rotate_half(x) = concat(-x2, x1). */
  private String rope(String x) {
    int half = c.headDim() / 2;
    String axis = g.intVector(3);
    String x1 = g.op("Slice", new String[] {x, g.intVector(0), g.intVector(half), axis});
    String x2 = g.op("Slice", new String[] {x, g.intVector(half), g.intVector(c.headDim()), axis});
    String rotated = g.op("Concat", new String[] {g.op("Neg", x2), x1}, "axis", -1L);
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotated, sin));
  }

  /** Grouped-query attention: each KV head serves groupSize query heads. */
  private String repeatKv(String x) {
    if (c.groupSize() == 1) {
      return x;
    }
    String expanded =
        g.op(
            "Expand", g.op("Unsqueeze", x, g.intVector(2)), g.intVector(1, 1, c.groupSize(), 1, 1));
    return g.op("Reshape", expanded, g.intVector(0, c.numHeads(), -1, c.headDim()));
  }

  /** x / sqrt(mean(x^2) + eps) * weight over the last axis. */
  private String rmsnorm(String x, String weight) {
    String meanSquare =
        g.op(
            "ReduceMean",
            new String[] {g.op("Mul", x, x)},
            "axes",
            new long[] {-1},
            "keepdims",
            1L);
    String eps = g.floatScalar("rms_norm_eps", (float) c.rmsNormEps());
    String inverseRms = g.op("Reciprocal", g.op("Sqrt", g.op("Add", meanSquare, eps)));
    return g.op("Mul", g.op("Mul", x, inverseRms), weight);
  }
}
