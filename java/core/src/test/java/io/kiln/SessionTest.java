package io.kiln;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SessionTest {
  private static BertReference ref;
  private static Session session;

  @BeforeAll
  static void open() throws Exception {
    ref = BertReference.load();
    session = Session.builder(ref.model()).device(Device.CPU).maxBatchSize(8).build();
  }

  @AfterAll
  static void close() {
    if (session != null) {
      session.close();
    }
  }

  @Test
  void inspectsInputsAndOutputs() {
    assertEquals(
        List.of("input_ids", "attention_mask", "token_type_ids"),
        session.inputs().stream().map(TensorInfo::name).toList());
    TensorInfo out = session.outputs().get(0);
    assertEquals("last_hidden_state", out.name());
    assertEquals(DType.F32, out.dtype());
    assertArrayEquals(new long[] {-1, -1, 128}, out.dims());
    assertEquals("batch", session.inputs().get(0).symbolicDims()[0]);
    assertEquals("onnxruntime-cpu", session.backendName());
  }

  @Test
  void reproducesTheOnnxRuntimeReference() {
    Map<String, Tensor> in = ref.batch();
    try (Session.Result r = session.infer(in)) {
      Tensor h = r.get("last_hidden_state");
      assertArrayEquals(new long[] {ref.rows(), ref.length(), 128}, h.shape());
      float[] all = h.toFloatArray();
      for (int row = 0; row < ref.rows(); row++) {
        float[] mine =
            Arrays.copyOfRange(all, row * ref.length() * 128, (row + 1) * ref.length() * 128);
        assertTrue(ref.maxErrorRow(row, mine, ref.length()) <= 1e-4, "row " + row);
      }
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  @Test
  void inferBatchPadsGroupsAndSplitsInOrder() {
    // Rows of lengths 19, 12 and 5, each sent unpadded, and repeated so that groups form.
    List<Map<String, Tensor>> requests = new ArrayList<>();
    int[] order = {2, 0, 1, 2, 1, 0, 2};
    for (int r : order) {
      requests.add(ref.row(r));
    }
    try (Session s =
        Session.builder(ref.model())
            .device(Device.CPU)
            .maxBatchSize(2)
            .sequenceBucket(16)
            .build()) {
      List<Session.Result> results = s.inferBatch(requests);
      assertEquals(order.length, results.size());
      for (int i = 0; i < order.length; i++) {
        try (Session.Result r = results.get(i)) {
          Tensor h = r.first();
          int len = ref.validLength(order[i]);
          assertArrayEquals(new long[] {1, len, 128}, h.shape(), "request " + i);
          assertTrue(ref.maxErrorRow(order[i], h.toFloatArray(), len) <= 1e-4, "request " + i);
        }
      }
    } finally {
      requests.forEach(m -> m.values().forEach(Tensor::close));
    }
  }

  @Test
  void benchmarkTimesEveryRun() {
    Map<String, Tensor> in = ref.batch();
    try {
      BenchmarkResult b = session.benchmark(in, 1, 5, java.time.Duration.ofMinutes(1));
      assertEquals(5, b.runs());
      assertEquals(3, b.batchSize());
      assertTrue(b.quantileMillis(0.5) > 0);
      assertTrue(b.quantileMillis(0.99) >= b.quantileMillis(0.5));
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  @Test
  void exportWritesTheModelAsItRuns(@TempDir Path dir) throws Exception {
    Path out = dir.resolve("exported.onnx");
    session.exportOnnx(out);
    assertArrayEquals(Files.readAllBytes(ref.model()), Files.readAllBytes(out));
    try (Session again = Session.builder(out).device(Device.CPU).build()) {
      assertEquals(session.inputs(), again.inputs());
    }
  }

  @Test
  void exportOfAModelWithExternalDataIsComplete(@TempDir Path dir) throws Exception {
    Path stored = dir.resolve("stored/model.onnx");
    io.kiln.model.onnx.OnnxModel.load(ref.model()).save(stored, true);
    Path data = dir.resolve("stored/model.onnx.data");
    assertTrue(Files.size(data) > Files.size(stored), "weights should live in the data file");
    Path out = dir.resolve("exported/bert.onnx");
    Map<String, Tensor> in = ref.batch();
    try (Session s = Session.builder(stored).device(Device.CPU).build()) {
      s.exportOnnx(out);
      assertArrayEquals(Files.readAllBytes(stored), Files.readAllBytes(out));
      assertArrayEquals(
          Files.readAllBytes(data), Files.readAllBytes(dir.resolve("exported/model.onnx.data")));
      try (Session again = Session.builder(out).device(Device.CPU).build();
          Session.Result a = s.infer(in);
          Session.Result b = again.infer(in)) {
        assertArrayEquals(a.first().toFloatArray(), b.first().toFloatArray());
      }
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  @Test
  void kvCacheNeedsADecoderWithPastAndPresent() {
    ModelException e =
        assertThrows(
            ModelException.class,
            () -> Session.builder(ref.model()).device(Device.CPU).kvCache(true).build());
    assertTrue(e.getMessage().contains("no past_key_values.* inputs"), e.getMessage());
    assertFalse(session.kvCache());
  }

  @Test
  void closedSessionRefusesWork() {
    Session s = Session.builder(ref.model()).device(Device.CPU).build();
    s.close();
    Map<String, Tensor> in = ref.batch();
    try {
      assertThrows(ClosedException.class, () -> s.infer(in));
    } finally {
      in.values().forEach(Tensor::close);
    }
  }
}
