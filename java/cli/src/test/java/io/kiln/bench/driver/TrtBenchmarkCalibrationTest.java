package io.kiln.bench.driver;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.Tensor;
import io.kiln.engine.trt.CalibrationBatches;
import io.kiln.precision.CalibrationSources;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The device bench's calibration files are what {@code kiln build --calibration DIR} reads. */
class TrtBenchmarkCalibrationTest {
  @Test
  void writtenBatchesReadBackForTheImplicitCalibrator(@TempDir Path dir) throws Exception {
    Path calibration = dir.resolve("calibration");
    // The public BERT has a third input, token_type_ids: every model input gets a tensor.
    Path model = io.kiln.SharedModels.require("public/bert/model.onnx");
    TrtBenchmark.writeCalibration(calibration, model, 128);
    try (CalibrationBatches c =
        CalibrationBatches.collect(
            CalibrationSources.parse(calibration.toString(), null, null), dir.resolve("x.calib"))) {
      assertEquals(8, c.batches().size());
      assertEquals(8, c.batchSize());
      for (Map<String, Tensor> b : c.batches()) {
        assertEquals(java.util.Set.of("input_ids", "attention_mask", "token_type_ids"), b.keySet());
        assertTrue(Arrays.stream(b.get("token_type_ids").toLongArray()).allMatch(v -> v == 0));
        assertArrayEquals(new long[] {8, 128}, b.get("input_ids").shape());
        long[] ids = b.get("input_ids").toLongArray();
        long[] mask = b.get("attention_mask").toLongArray();
        assertTrue(Arrays.stream(ids).allMatch(v -> v >= 1 && v <= 30000));
        assertTrue(Arrays.stream(mask).allMatch(v -> v == 0 || v == 1));
        // Every row keeps at least 16 real tokens and masks the rest.
        for (int r = 0; r < 8; r++) {
          assertEquals(1, mask[r * 128 + 15]);
        }
      }
      long[] first = c.batches().get(0).get("input_ids").toLongArray();
      long[] second = c.batches().get(1).get("input_ids").toLongArray();
      assertTrue(!Arrays.equals(first, second));
    }
  }
}
