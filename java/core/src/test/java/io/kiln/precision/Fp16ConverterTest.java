package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.Tensor;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class Fp16ConverterTest {
  private static double relativeL2(float[] ref, float[] x) {
    double d = 0;
    double n = 0;
    for (int i = 0; i < ref.length; i++) {
      d += (ref[i] - x[i]) * (double) (ref[i] - x[i]);
      n += ref[i] * (double) ref[i];
    }
    return Math.sqrt(d / n);
  }

  private static Map<String, Tensor> referenceInputs(JsonNode ref) {
    Map<String, Tensor> feed = new LinkedHashMap<>();
    for (String name : List.of("input_ids", "attention_mask", "token_type_ids")) {
      JsonNode rows = ref.get(name);
      int b = rows.size();
      int s = rows.get(0).size();
      long[] v = new long[b * s];
      for (int i = 0; i < b; i++) {
        for (int j = 0; j < s; j++) {
          v[i * s + j] = rows.get(i).get(j).asLong();
        }
      }
      feed.put(name, Tensor.of(v, b, s));
    }
    return feed;
  }

  @Test
  void bertFp16StaysWithin2e3OfFp32() throws Exception {
    Path dir = TestModels.sharedModels().resolve("public/bert");
    OnnxModel fp32 = OnnxModel.load(dir.resolve("model.onnx"));
    Fp16Converter.Result r = new Fp16Converter(Fp16Converter.Options.defaults()).convert(fp32);
    OnnxModel fp16 = r.model();
    fp16.check();

    int halfWeights = 0;
    for (Proto t : fp16.initializers().values()) {
      assertTrue(
          TensorProtos.dataType(t) != TensorProtos.FLOAT
              || TensorProtos.elementCount(t) < 1000
              || isLayerNormParameter(fp16, TensorProtos.name(t)),
          "large float32 initializer left: " + TensorProtos.name(t));
      if (TensorProtos.dataType(t) == TensorProtos.FLOAT16) {
        halfWeights++;
      }
    }
    assertTrue(halfWeights > 10, "weights converted: " + halfWeights);
    for (Proto vi : fp16.graphInputs()) {
      assertFalse(OnnxModel.elemType(vi) == TensorProtos.FLOAT16, "inputs keep their types");
    }
    assertEquals(TensorProtos.FLOAT, OnnxModel.elemType(fp16.graphOutputs().get(0)));
    assertTrue(r.fp32Nodes().stream().anyMatch(n -> n.contains("LayerNorm")), "" + r.fp32Nodes());
    assertFalse(r.clamps().isEmpty(), "the -inf attention mask constants must be reported");

    JsonNode ref = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
    try (OrtRunner a = new OrtRunner(fp32, 0);
        OrtRunner b = new OrtRunner(fp16, 0)) {
      List<Map<String, Tensor>> feeds = new java.util.ArrayList<>();
      feeds.add(referenceInputs(ref));
      for (int seed = 0; seed < 3; seed++) {
        feeds.add(
            RandomCalibrationData.sample(fp32, new Random(100 + seed), 2 + seed, 7 + 9 * seed));
      }
      for (Map<String, Tensor> feed : feeds) {
        float[] x = a.run(feed).get("last_hidden_state").data();
        float[] y = b.run(feed).get("last_hidden_state").data();
        double err = relativeL2(x, y);
        System.out.printf("BERT FP16 vs FP32 ORT: relative L2 %.3e%n", err);
        assertTrue(err <= 2e-3, "relative L2 " + err);
        assertTrue(err > 0, "the FP16 graph must differ from FP32 somewhere");
        feed.values().forEach(Tensor::close);
      }
      // The FP32 run itself matches the committed reference, so the comparison is anchored.
      Map<String, Tensor> feed = referenceInputs(ref);
      float[] x = a.run(feed).get("last_hidden_state").data();
      float[] expected = new float[ref.get("last_hidden_state").size()];
      for (int i = 0; i < expected.length; i++) {
        expected[i] = (float) ref.get("last_hidden_state").get(i).asDouble();
      }
      assertTrue(relativeL2(expected, x) < 1e-4);
      feed.values().forEach(Tensor::close);
    }
  }

  private static boolean isLayerNormParameter(OnnxModel m, String tensor) {
    for (Node n : m.nodes()) {
      if (n.opType().equals("LayerNormalization") && n.inputs().contains(tensor)) {
        return true;
      }
    }
    return false;
  }

  @Test
  void decomposedLayerNormStaysFloat32AndAutoModeKeepsHotNodes() {
    OnnxModel fp32 = OnnxModel.parse(TestModels.miniLmBytes());
    Fp16Converter.Result r = new Fp16Converter(Fp16Converter.Options.defaults()).convert(fp32);
    // 13 layer norms written out as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add.
    long sqrts = r.fp32Nodes().stream().filter(n -> n.endsWith("/Sqrt")).count();
    long divs = r.fp32Nodes().stream().filter(n -> n.endsWith("LayerNorm/Div")).count();
    assertEquals(13, sqrts);
    assertEquals(13, divs);
    assertTrue(r.fp32Nodes().stream().noneMatch(n -> n.contains("MatMul")));
    r.model().check();

    Set<String> hot =
        Fp16Converter.nodesBeyond(
            fp32, new RandomCalibrationData(fp32, 2, 1, 16, 5), 5f, Progress.NONE);
    assertFalse(hot.isEmpty(), "some activations exceed 5");
    Set<String> none =
        Fp16Converter.nodesBeyond(
            fp32, new RandomCalibrationData(fp32, 2, 1, 16, 5), 1e30f, Progress.NONE);
    assertTrue(none.isEmpty());
    Fp16Converter.Result auto =
        new Fp16Converter(Fp16Converter.Options.defaults().withFp32Nodes(hot)).convert(fp32);
    assertTrue(auto.fp32Nodes().containsAll(hot));
    assertTrue(auto.fp32Nodes().size() > r.fp32Nodes().size());
  }

  @Test
  void outOfRangeConstantsAreClampedAndReported() {
    Proto t = TensorProtos.ofFloats("w", new float[] {1f, -1e6f, 7e4f, 3f}, 4);
    List<Fp16Converter.Clamp> clamps = new java.util.ArrayList<>();
    Proto h = Fp16Converter.toHalf(t, "w", clamps);
    assertEquals(1, clamps.size());
    assertEquals(2, clamps.get(0).count());
    assertEquals(1e6f, clamps.get(0).maxAbs());
    float[] v = TensorProtos.floats(h);
    assertEquals(-65504f, v[1]);
    assertEquals(65504f, v[2]);
    assertEquals(3f, v[3]);
  }
}
