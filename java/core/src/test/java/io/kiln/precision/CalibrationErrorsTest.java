package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.Tensor;
import io.kiln.model.TensorJson;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad models, missing or empty calibration data and bad caches fail with typed errors. */
class CalibrationErrorsTest {
  @TempDir Path dir;

  private static OnnxModel miniLm() {
    return OnnxModel.parse(TestModels.miniLmBytes());
  }

  @Test
  void missingAndEmptyCalibrationData() throws Exception {
    OnnxModel m = miniLm();
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () -> CalibrationSources.parse(dir.resolve("nope").toString(), m, null));
    assertTrue(e.getMessage().contains("not found"), e.getMessage());
    Files.createDirectories(dir.resolve("empty"));
    e =
        assertThrows(
            InvalidInputException.class,
            () -> CalibrationSources.parse(dir.resolve("empty").toString(), m, null));
    assertTrue(e.getMessage().contains("empty"), e.getMessage());
    assertThrows(InvalidInputException.class, () -> CalibrationSources.parse("random:0", m, null));
    assertThrows(InvalidInputException.class, () -> CalibrationSources.parse("random:x", m, null));
    assertThrows(
        InvalidInputException.class, () -> CalibrationSources.parse("texts:/no/file.txt", m, null));
    Path blank = Files.writeString(dir.resolve("blank.txt"), "\n  \n");
    Path tok =
        Files.write(
            dir.resolve("tok.json"), TestModels.resource("all-minilm-l6-v2-tokenizer.json"));
    e =
        assertThrows(
            InvalidInputException.class, () -> CalibrationSources.parse("texts:" + blank, m, tok));
    assertTrue(e.getMessage().contains("empty"), e.getMessage());
  }

  @Test
  void directoryDataIsStreamedFromJsonFiles() throws Exception {
    OnnxModel m = miniLm();
    Path data = Files.createDirectories(dir.resolve("cal"));
    for (int i = 0; i < 3; i++) {
      Map<String, Tensor> feed = RandomCalibrationData.sample(m, new Random(i), 2, 12);
      TensorJson.write(feed, data.resolve("sample" + i + ".json"));
      feed.values().forEach(Tensor::close);
    }
    // A folder of NAME.npy files is one sample too.
    Path npy = Files.createDirectories(data.resolve("sample3"));
    Map<String, Tensor> feed = RandomCalibrationData.sample(m, new Random(3), 2, 12);
    feed.forEach((name, t) -> io.kiln.model.Npy.write(t, npy.resolve(name + ".npy")));
    feed.values().forEach(Tensor::close);
    Files.writeString(data.resolve("notes.txt"), "ignored");
    Quantizer q = new Quantizer(QuantizerOptions.defaults().withMethod(CalibrationMethod.MAX));
    CalibrationCache cache =
        q.calibrate(m, "sha", CalibrationSources.parse(data.toString(), m, null), Progress.NONE);
    assertEquals(8, cache.tensors().values().iterator().next().samples());

    Files.writeString(data.resolve("sample9.json"), "{ not json");
    assertThrows(
        InvalidInputException.class,
        () ->
            q.calibrate(
                m, "sha", CalibrationSources.parse(data.toString(), m, null), Progress.NONE));
  }

  @Test
  void cacheProblemsAreTyped() throws Exception {
    assertThrows(
        InvalidInputException.class, () -> CalibrationCache.load(dir.resolve("none.json")));
    Path junk = Files.writeString(dir.resolve("junk.json"), "[1, 2]");
    assertThrows(InvalidInputException.class, () -> CalibrationCache.load(junk));
    Path bad =
        Files.writeString(
            dir.resolve("bad.json"),
            "{\"format\":\"kiln-calibration/1\",\"tensors\":{\"x\":{\"amax\":-1}}}");
    assertThrows(InvalidInputException.class, () -> CalibrationCache.load(bad));

    // A cache made for other tensors cannot quantize this model.
    CalibrationCache other =
        new CalibrationCache(
            "sha", "test", Map.of("x", new CalibrationCache.Entry(1f, CalibrationMethod.MAX, 1)));
    Quantizer q = new Quantizer(QuantizerOptions.defaults().withSmoothing(0));
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> q.quantize(miniLm(), other));
    assertTrue(e.getMessage().contains("recalibrate"), e.getMessage());
    Quantizer smoothing = new Quantizer(QuantizerOptions.defaults());
    assertThrows(InvalidInputException.class, () -> smoothing.quantize(miniLm(), other));
  }

  @Test
  void misspeltExclusionsAndUnsmoothedPatternsAreRejected() {
    OnnxModel m = miniLm();
    String matMul =
        m.nodes().stream().filter(n -> n.opType().equals("MatMul")).findFirst().get().name();
    CalibrationCache empty = new CalibrationCache("sha", "none", Map.of());
    Quantizer typo =
        new Quantizer(
            QuantizerOptions.defaults()
                .withExcluded(java.util.Set.of(matMul + "x"), java.util.Set.of("Softmax")));
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> typo.quantize(m, empty));
    assertTrue(e.getMessage().contains(matMul + "x"), e.getMessage());
    Quantizer nowhere =
        new Quantizer(
            QuantizerOptions.defaults().withUnsmoothed(java.util.Set.of("**/nowhere/MatMul")));
    e =
        assertThrows(
            InvalidInputException.class,
            () ->
                nowhere.calibrate(
                    m, "sha", new RandomCalibrationData(m, 1, 1, 8, 1), Progress.NONE));
    assertTrue(e.getMessage().contains("**/nowhere/MatMul"), e.getMessage());
    // A real name and a real op type pass the check (and fail later only for the empty cache).
    Quantizer real =
        new Quantizer(
            QuantizerOptions.defaults()
                .withExcluded(java.util.Set.of(matMul), java.util.Set.of("Softmax")));
    Exception later = assertThrows(Exception.class, () -> real.quantize(m, empty));
    assertTrue(!later.getMessage().contains("neither"), later.getMessage());
  }

  @Test
  void unsupportedModelsAreModelExceptions() {
    OnnxModel m = miniLm();
    Quantizer everythingExcluded =
        new Quantizer(
            QuantizerOptions.defaults()
                .withExcluded(java.util.Set.of(), java.util.Set.of("MatMul")));
    ModelException e =
        assertThrows(
            ModelException.class,
            () ->
                everythingExcluded.calibrate(
                    m, "sha", new RandomCalibrationData(m, 1, 1, 8, 1), Progress.NONE));
    assertTrue(e.getMessage().contains("nothing to quantize"), e.getMessage());

    // An op the ONNX version converter has no adapter for cannot be brought to opset 13.
    OnnxModel broken = miniLm();
    List<Node> nodes = broken.nodes();
    nodes.add(Node.create("NoSuchOp", "weird", List.of("input_ids"), List.of("weird_out")));
    broken.setNodes(nodes);
    assertThrows(ModelException.class, () -> Quantizer.prepare(broken));
    assertThrows(ModelException.class, broken::check);

    // Control-flow bodies are not converted to FP16: refused with a typed error.
    OnnxModel withIf = miniLm();
    Node ifNode = Node.create("If", "branch", List.of("input_ids"), List.of("branch_out"));
    ifNode.proto().addMessage(5).setString(1, "then_branch").setLong(20, 5).addMessage(6);
    List<Node> withIfNodes = withIf.nodes();
    withIfNodes.add(ifNode);
    withIf.setNodes(withIfNodes);
    ModelException sub =
        assertThrows(
            ModelException.class,
            () -> new Fp16Converter(Fp16Converter.Options.defaults()).convert(withIf));
    assertTrue(sub.getMessage().contains("subgraph"), sub.getMessage());
  }
}
