package io.kiln.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.Device;
import io.kiln.ModelException;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Models past the 2 GiB protobuf limit take the external-data path everywhere. A lowered limit
 * sends the small MiniLM down that same path.
 */
class LargeModelPathTest {
  @TempDir Path dir;

  @AfterEach
  void restore() {
    System.clearProperty("kiln.onnx.inlineLimit");
  }

  @Test
  void externalDataPathGivesTheSameResults() throws Exception {
    OnnxModel small = OnnxModel.parse(TestModels.miniLmBytes());
    Map<String, Tensor> feed = RandomCalibrationData.sample(small, new Random(2), 1, 12);
    float[] inline;
    try (OrtRunner r = new OrtRunner(small, 0)) {
      inline = r.run(feed).get("last_hidden_state").data();
    }
    Path saved = dir.resolve("model.onnx");
    small.save(saved, true);

    System.setProperty("kiln.onnx.inlineLimit", Long.toString(1 << 20));
    OnnxModel large = OnnxModel.load(saved);
    assertThrows(ModelException.class, large::toBytes);
    try (OrtRunner r = new OrtRunner(large, 0)) {
      assertArrayEquals(inline, r.run(feed).get("last_hidden_state").data());
    }
    // The session pipeline stores the converted graph with external data.
    try (Session s =
        Session.builder(ModelSource.of(saved))
            .device(Device.CPU)
            .precision(Precision.FP16)
            .cacheDir(dir.resolve("cache"))
            .build()) {
      try (var files = Files.list(dir.resolve("cache/precision"))) {
        assertTrue(files.anyMatch(p -> p.toString().endsWith(".onnx.data")));
      }
      float[] half = s.infer(feed).first().toFloatArray();
      double d = 0;
      double n = 0;
      for (int i = 0; i < half.length; i++) {
        d += (half[i] - inline[i]) * (double) (half[i] - inline[i]);
        n += inline[i] * (double) inline[i];
      }
      assertTrue(Math.sqrt(d / n) < 5e-3, "fp16 relative L2 " + Math.sqrt(d / n));
    }
    feed.values().forEach(Tensor::close);
  }
}
