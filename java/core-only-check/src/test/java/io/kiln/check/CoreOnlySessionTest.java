package io.kiln.check;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.Device;
import io.kiln.Tensor;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * What a user who depends on kiln-core alone gets: a session on the public BERT whose outputs match
 * ONNX Runtime's fp32 reference, with no GPU module on the classpath.
 */
class CoreOnlySessionTest {
  @Test
  void sessionOnThePublicBertMatchesTheReference() throws Exception {
    Path bert = sharedModels().resolve("public/bert");
    assumeTrue(Files.isRegularFile(bert.resolve("model.onnx")), "skipped: " + bert + " is missing");
    JsonNode reference = new ObjectMapper().readTree(bert.resolve("reference.json").toFile());
    Map<String, Tensor> inputs = new LinkedHashMap<>();
    for (String name : new String[] {"input_ids", "attention_mask", "token_type_ids"}) {
      JsonNode rows = reference.get(name);
      int batch = rows.size();
      int length = rows.get(0).size();
      long[] data = new long[batch * length];
      for (int r = 0; r < batch; r++) {
        for (int c = 0; c < length; c++) {
          data[r * length + c] = rows.get(r).get(c).asLong();
        }
      }
      inputs.put(name, Tensor.of(data, batch, length));
    }
    JsonNode expected = reference.get("last_hidden_state");
    try (Session session = Session.builder(bert.resolve("model.onnx")).build();
        Session.Result result = session.infer(inputs)) {
      assertEquals("onnxruntime-cpu", session.backendName());
      float[] hidden = result.get("last_hidden_state").toFloatArray();
      assertEquals(expected.size(), hidden.length);
      double diff = 0;
      double norm = 0;
      for (int i = 0; i < hidden.length; i++) {
        double want = expected.get(i).asDouble();
        diff += (hidden[i] - want) * (hidden[i] - want);
        norm += want * want;
      }
      double relative = Math.sqrt(diff / norm);
      assertTrue(relative < 1e-5, "relative error " + relative);
    } finally {
      inputs.values().forEach(Tensor::close);
    }
  }

  @Test
  void noGpuModuleIsOnTheClasspath() {
    assertThrows(ClassNotFoundException.class, () -> Class.forName("io.kiln.engine.trt.TrtEngine"));
    assertThrows(
        io.kiln.BackendException.class,
        () -> Session.builder(new byte[] {1}).device(Device.CUDA).build());
  }

  /** {@code ../shared/models} beside the checkout; the test skips when it is not there. */
  private static Path sharedModels() {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.exists(dir.resolve(".ci")) || Files.isDirectory(dir.resolve(".git"))) {
        Path shared = dir.resolveSibling("shared").resolve("models");
        assumeTrue(
            Files.isDirectory(shared), "skipped: ../shared/models is not beside this checkout");
        return shared;
      }
    }
    assumeTrue(false, "skipped: not inside a checkout");
    return null;
  }
}
