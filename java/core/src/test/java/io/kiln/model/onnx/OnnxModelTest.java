package io.kiln.model.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.ModelException;
import io.kiln.precision.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OnnxModelTest {
  @TempDir Path dir;

  /** Decoding every level (graph, nodes, initializers) and encoding again gives the same bytes. */
  @Test
  void decodedButUneditedModelEncodesToTheSameBytes() {
    byte[] bytes = TestModels.miniLmBytes();
    OnnxModel m = OnnxModel.parse(bytes);
    m.nodes().forEach(n -> n.inputs());
    m.initializers().values().forEach(TensorProtos::dims);
    m.valueInfos().values().forEach(OnnxModel::dims);
    assertArrayEquals(bytes, m.toBytes());
  }

  @Test
  void untouchedModelEncodesToTheSameBytes() {
    byte[] bytes = TestModels.miniLmBytes();
    OnnxModel m = OnnxModel.parse(bytes);
    assertArrayEquals(bytes, m.toBytes());
    assertEquals(
        java.util.List.of("input_ids", "attention_mask", "token_type_ids"), m.inputNames());
    assertTrue(m.nodes().size() > 100);
  }

  @Test
  void checkerAndShapeInferenceRunNatively() {
    OnnxModel m = OnnxModel.parse(TestModels.miniLmBytes());
    m.check();
    m.inferShapes();
    assertTrue(
        m.valueInfos().size() > m.nodes().size() / 2, "value infos: " + m.valueInfos().size());
  }

  @Test
  void checkerRejectsABrokenGraph() {
    OnnxModel m = OnnxModel.parse(TestModels.miniLmBytes());
    Node first = m.nodes().get(0);
    first.setInput(0, "no_such_tensor");
    ModelException e = assertThrows(ModelException.class, m::check);
    assertTrue(e.getMessage().contains("checker"), e.getMessage());
  }

  @Test
  void externalDataRoundTrips() throws Exception {
    OnnxModel m = OnnxModel.parse(TestModels.miniLmBytes());
    Path out = dir.resolve("ext/model.onnx");
    m.save(out, true);
    assertTrue(Files.size(out) < 200_000, "model file should hold references only");
    assertTrue(Files.size(dir.resolve("ext/model.onnx.data")) > 80_000_000);
    OnnxModel back = OnnxModel.load(out);
    assertArrayEquals(m.toBytes(), back.toBytes());
    back.check();

    // ONNX Runtime reads the external data file too, with the same results as inline bytes.
    java.util.Map<String, io.kiln.Tensor> feed =
        io.kiln.precision.RandomCalibrationData.sample(m, new Random(1), 1, 8);
    try (io.kiln.engine.Engine inline =
            io.kiln.engine.ort.OrtEngine.load(io.kiln.model.ModelSource.of("m", m.toBytes()), 1);
        io.kiln.engine.Engine external =
            io.kiln.engine.ort.OrtEngine.load(io.kiln.model.ModelSource.of(out), 1)) {
      float[] a = inline.run(feed).values().iterator().next().toFloatArray();
      float[] b = external.run(feed).values().iterator().next().toFloatArray();
      assertArrayEquals(a, b);
    }
    feed.values().forEach(io.kiln.Tensor::close);
  }

  @Test
  void externalDataProblemsAreTyped() throws Exception {
    OnnxModel m = OnnxModel.parse(TestModels.miniLmBytes());
    Path out = dir.resolve("model.onnx");
    m.save(out, true);
    byte[] skeleton = Files.readAllBytes(out);
    assertThrows(ModelException.class, () -> OnnxModel.parse(skeleton));
    Files.write(dir.resolve("model.onnx.data"), new byte[100]);
    ModelException e = assertThrows(ModelException.class, () -> OnnxModel.load(out));
    assertTrue(e.getMessage().contains("past the end"), e.getMessage());
    Files.delete(dir.resolve("model.onnx.data"));
    e = assertThrows(ModelException.class, () -> OnnxModel.load(out));
    assertTrue(e.getMessage().contains("not found"), e.getMessage());
  }

  @Test
  void corruptBytesAreModelExceptions() {
    byte[] good = TestModels.miniLmBytes();
    assertThrows(ModelException.class, () -> OnnxModel.parse(new byte[0]));
    assertThrows(ModelException.class, () -> OnnxModel.parse("hello, not a model".getBytes()));
    assertThrows(ModelException.class, () -> OnnxModel.parse(Arrays.copyOf(good, good.length / 2)));
    Random r = new Random(7);
    for (int i = 0; i < 20; i++) {
      byte[] junk = new byte[1 + r.nextInt(4096)];
      r.nextBytes(junk);
      assertThrows(ModelException.class, () -> OnnxModel.parse(junk));
    }
    assertThrows(ModelException.class, () -> OnnxModel.load(Path.of("/no/such/model.onnx")));
  }

  /**
   * Byte flips in the graph structure (the external-data model file holds no weights) end in
   * ModelException or a valid model, through parsing, checking, shape inference and opset
   * conversion; a native crash would take the test JVM down.
   */
  @Test
  void mutatedGraphsNeverCrashNativeCode() throws Exception {
    Path model = dir.resolve("fuzz/model.onnx");
    OnnxModel.parse(TestModels.miniLmBytes()).save(model, true);
    byte[] good = Files.readAllBytes(model);
    Random r = new Random(11);
    int valid = 0;
    for (int i = 0; i < 150; i++) {
      byte[] b = good.clone();
      for (int k = 0, n = 1 + r.nextInt(4); k < n; k++) {
        b[r.nextInt(b.length)] = (byte) r.nextInt(256);
      }
      Files.write(model, b);
      try {
        OnnxModel m = OnnxModel.load(model);
        m.inferShapes();
        m.convertOpset(13).check();
        valid++;
      } catch (ModelException expected) {
        // typed rejection is the other allowed outcome
      }
    }
    assertTrue(valid > 0 && valid < 150, "valid mutants: " + valid);
  }
}
