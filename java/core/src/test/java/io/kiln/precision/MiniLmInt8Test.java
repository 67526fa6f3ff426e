package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.util.HfTokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** INT8 on the real all-MiniLM-L6-v2, calibrated and evaluated on disjoint sentence sets. */
class MiniLmInt8Test {
  @TempDir static Path dir;
  static OnnxModel fp32;
  static Path tokenizer;
  static Path calibration;
  static List<String> heldOut;

  @BeforeAll
  static void load() throws Exception {
    fp32 = OnnxModel.parse(TestModels.miniLmBytes());
    tokenizer = dir.resolve("tokenizer.json");
    Files.write(tokenizer, TestModels.resource("all-minilm-l6-v2-tokenizer.json"));
    calibration = dir.resolve("calibration.txt");
    Files.write(calibration, TestModels.resource("precision/calibration-sentences.txt"));
    heldOut = new String(TestModels.resource("precision/heldout-sentences.txt")).lines().toList();
  }

  /** The held-out sentences' embeddings from {@code int8} against FP32's. */
  private static EmbeddingComparison.Result onHeldOut(OnnxModel int8) throws Exception {
    try (OrtRunner ref = new OrtRunner(fp32, 0);
        OrtRunner cand = new OrtRunner(int8, 0);
        HuggingFaceTokenizer tok = HfTokenizers.open(tokenizer)) {
      return EmbeddingComparison.compare(ref, cand, tok, fp32.inputNames(), heldOut, 8);
    }
  }

  private static CalibrationData calibrationData() {
    return TextCalibrationData.open(calibration, tokenizer, fp32.inputNames(), 8, 128);
  }

  @Test
  void setsAreLargeAndDisjoint() throws Exception {
    List<String> cal = Files.readAllLines(calibration);
    assertTrue(cal.size() >= 64, "calibration sentences: " + cal.size());
    assertTrue(heldOut.size() >= 100, "held-out sentences: " + heldOut.size());
    Set<String> overlap = new HashSet<>(cal);
    overlap.retainAll(heldOut);
    assertTrue(overlap.isEmpty(), "shared sentences: " + overlap);
  }

  @Test
  void percentileInt8EmbeddingsFollowFp32() throws Exception {
    QuantizerOptions options = QuantizerOptions.defaults().withMethod(CalibrationMethod.PERCENTILE);
    // The activation type does not change calibration: one cache serves both graphs.
    CalibrationCache cache =
        new Quantizer(options).calibrate(fp32, "test", calibrationData(), Progress.NONE);
    assertEquals(70, cache.tensors().values().iterator().next().samples());
    for (ActivationType type : ActivationType.values()) {
      OnnxModel int8 = new Quantizer(options.withActivationType(type)).quantize(fp32, cache);
      int8.check();
      EmbeddingComparison.Result r = onHeldOut(int8);
      System.out.printf(
          "MiniLM INT8 (%s, percentile): %d held-out sentences, mean cosine %.5f, min %.5f,"
              + " Spearman of pairwise similarities %.5f%n",
          type, r.sentences(), r.meanCosine(), r.minCosine(), r.spearman());
      assertEquals(heldOut.size(), r.sentences());
      assertTrue(r.meanCosine() >= 0.99, "mean cosine " + r.meanCosine());
      assertTrue(r.spearman() >= 0.98, "spearman " + r.spearman());
    }
  }

  @Test
  void sharedLayoutQuantizesEachTensorOnceAndKeepsAccuracy() throws Exception {
    QuantizerOptions perReader = QuantizerOptions.defaults().withWeightedOnly(true);
    Quantizer shared = new Quantizer(perReader.withSharedQdq(true));
    CalibrationCache cache = shared.calibrate(fp32, "test", calibrationData(), Progress.NONE);
    OnnxModel int8 = shared.quantize(fp32, cache);
    int8.check();
    Map<String, Integer> quantizeNodes = new HashMap<>();
    int smoothingMuls = 0;
    for (Node n : int8.nodes()) {
      if (n.opType().equals("QuantizeLinear")) {
        quantizeNodes.merge(n.input(0), 1, Integer::sum);
      }
      if (n.opType().equals("Mul") && n.output(0).contains("_smoothed")) {
        smoothingMuls++;
      }
    }
    quantizeNodes.forEach((t, k) -> assertEquals(1, k, t + " is quantized " + k + " times"));
    // Per layer: the attention input (Q, K, V share it), the attention context, the FFN input
    // and the GELU output; one reader each would be 6 MatMuls per layer.
    assertEquals(6 * 4, quantizeNodes.size());
    assertEquals(6 * 4, smoothingMuls);
    long perReaderQuantizes =
        new Quantizer(perReader)
                .quantize(
                    fp32,
                    new Quantizer(perReader)
                        .calibrate(fp32, "test", calibrationData(), Progress.NONE))
                .nodes()
                .stream()
                .filter(n -> n.opType().equals("QuantizeLinear"))
                .count();
    assertEquals(6 * 6, perReaderQuantizes);
    EmbeddingComparison.Result r = onHeldOut(int8);
    System.out.printf(
        "MiniLM INT8 (shared Q/DQ, weighted only): mean cosine %.5f, min %.5f%n",
        r.meanCosine(), r.minCosine());
    assertTrue(r.meanCosine() >= 0.99, "mean cosine " + r.meanCosine());
  }

  @Test
  void float16FormKeepsInt8WeightsFloat32IoAndTheEmbeddings() throws Exception {
    Quantizer q =
        new Quantizer(QuantizerOptions.defaults().withWeightedOnly(true).withSharedQdq(true));
    OnnxModel int8 = q.quantize(fp32, q.calibrate(fp32, "test", calibrationData(), Progress.NONE));
    Float16Qdq.Result r = Float16Qdq.convert(int8);
    OnnxModel half = r.model();
    half.check();
    assertTrue(half.opset() >= Float16Qdq.OPSET, "opset " + half.opset());
    half.initializers()
        .forEach(
            (name, t) ->
                assertTrue(
                    io.kiln.model.onnx.TensorProtos.dataType(t)
                        != io.kiln.model.onnx.TensorProtos.FLOAT,
                    name + " is still float32"));
    Map<String, Node> producers = new HashMap<>();
    half.nodes().forEach(n -> n.outputs().forEach(o -> producers.put(o, n)));
    long int8Weights =
        half.nodes().stream()
            .filter(n -> n.opType().equals("DequantizeLinear"))
            .filter(n -> half.initializers().containsKey(n.input(0)))
            .filter(
                n ->
                    io.kiln.model.onnx.TensorProtos.dataType(half.initializers().get(n.input(0)))
                        == io.kiln.model.onnx.TensorProtos.INT8)
            .count();
    assertEquals(6 * 6, int8Weights, "every weighted MatMul keeps its INT8 weight");
    half.graphOutputs()
        .forEach(
            o ->
                assertEquals(
                    io.kiln.model.onnx.TensorProtos.FLOAT,
                    OnnxModel.elemType(o),
                    OnnxModel.name(o) + " should stay float32 for callers"));
    EmbeddingComparison.Result e = onHeldOut(half);
    System.out.printf(
        "MiniLM INT8 float16 form: mean cosine %.5f, min %.5f%n", e.meanCosine(), e.minCosine());
    // Everything float16 on the CPU costs about 0.005 of mean cosine against the float32 form.
    assertTrue(e.meanCosine() >= 0.985, "mean cosine " + e.meanCosine());
    assertThrows(io.kiln.ModelException.class, () -> Float16Qdq.convert(fp32));
  }

  @Test
  void unsmoothedMatMulsReadTheirInputQuantizedButNotRescaled() {
    Quantizer q =
        new Quantizer(
            QuantizerOptions.defaults()
                .withWeightedOnly(true)
                .withSharedQdq(true)
                .withUnsmoothed(Set.of("**/layer.*/output/dense/MatMul")));
    OnnxModel int8 = q.quantize(fp32, q.calibrate(fp32, "test", calibrationData(), Progress.NONE));
    int8.check();
    Map<String, Node> producers = new HashMap<>();
    for (Node n : int8.nodes()) {
      n.outputs().forEach(o -> producers.put(o, n));
    }
    int unsmoothed = 0;
    int smoothed = 0;
    for (Node n : int8.nodes()) {
      if (!n.opType().equals("MatMul") || !producers.containsKey(n.input(0))) {
        continue;
      }
      Node dq = producers.get(n.input(0));
      if (!dq.opType().equals("DequantizeLinear")) {
        continue;
      }
      Node quantized = producers.get(producers.get(dq.input(0)).input(0));
      boolean rescaled =
          quantized.opType().equals("Mul") && quantized.output(0).contains("_smoothed");
      if (n.name().endsWith("/output/dense/MatMul") && !n.name().contains("attention")) {
        assertTrue(!rescaled, n.name() + " reads a smoothed input");
        unsmoothed++;
      } else if (rescaled) {
        smoothed++;
      }
    }
    assertEquals(6, unsmoothed, "one FFN-out MatMul per layer, still quantized");
    assertEquals(6 * 5, smoothed, "Q, K, V, attention output and FFN-in stay smoothed");
  }

  @Test
  void cacheAloneReproducesTheSameGraph() {
    Quantizer q = new Quantizer(QuantizerOptions.defaults().withMethod(CalibrationMethod.ENTROPY));
    CalibrationCache cache = q.calibrate(fp32, "sha", calibrationData(), Progress.NONE);
    byte[] first = q.quantize(fp32, cache).toBytes();
    Path file = dir.resolve("calibration.json");
    cache.save(file);
    CalibrationCache reloaded = CalibrationCache.load(file);
    assertEquals(cache.tensors(), reloaded.tensors());
    byte[] again =
        new Quantizer(q.options())
            .quantize(OnnxModel.parse(TestModels.miniLmBytes()), reloaded)
            .toBytes();
    assertArrayEquals(first, again);
  }

  @Test
  void placementFollowsTheRules() {
    Quantizer q = new Quantizer(QuantizerOptions.defaults().withSmoothing(0).withResidualAdd(true));
    OnnxModel prepared = Quantizer.prepare(fp32);
    QdqPlacement plan = QdqPlacement.plan(prepared, q.options());
    Set<String> inits = prepared.initializers().keySet();
    List<Node> nodes = prepared.nodes();
    int weights = 0;
    int residual = 0;
    for (QdqPlacement.Edge e : plan.edges()) {
      Node n = nodes.get(e.node());
      if (e.weight()) {
        weights++;
        assertEquals("MatMul", n.opType());
        assertEquals(1, e.axis(), "MatMul weights [K, N] are per output channel (axis 1)");
      } else {
        assertTrue(!inits.contains(e.tensor()), "biases and constants are never quantized");
        assertTrue(!prepared.outputNames().contains(e.tensor()));
      }
      if (n.opType().equals("Add")) {
        residual++;
      }
    }
    assertEquals(36, weights, "6 layers x (Q, K, V, attention output, FFN in, FFN out)");
    assertEquals(26, residual, "2 residual Adds per layer and the embedding sum, both inputs");
    assertEquals(
        0,
        QdqPlacement.plan(prepared, q.options().withExcluded(Set.of(), Set.of("MatMul", "Add")))
            .edges()
            .size());
    int keepEnds =
        QdqPlacement.plan(prepared, q.options().withKeepFirstAndLast(true).withResidualAdd(false))
            .edges()
            .size();
    int all = QdqPlacement.plan(prepared, q.options().withResidualAdd(false)).edges().size();
    assertEquals(all - 4, keepEnds, "first and last MatMul lose both their Q/DQ inputs");
    List<QdqPlacement.Edge> weighted =
        QdqPlacement.plan(prepared, q.options().withResidualAdd(false).withWeightedOnly(true))
            .edges();
    assertEquals(all - 12 * 2, weighted.size(), "6 layers x 2 attention products leave float");
    for (QdqPlacement.Edge e : weighted) {
      Node n = nodes.get(e.node());
      assertTrue(
          inits.contains(n.input(0)) || inits.contains(n.input(1)),
          n.name() + " multiplies two activations");
    }
  }
}
