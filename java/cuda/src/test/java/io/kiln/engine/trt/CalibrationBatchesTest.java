package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.TensorJson;
import io.kiln.precision.CalibrationData;
import io.kiln.precision.DirectoryCalibrationData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The implicit INT8 path reads the same calibration sources as {@code kiln quantize}. */
class CalibrationBatchesTest {
  private static void writeSample(Path file, int batch, int seq, long seed) {
    Random rnd = new Random(seed);
    long[] ids = new long[batch * seq];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = 1 + rnd.nextInt(30000);
    }
    try (Tensor t = Tensor.of(ids, batch, seq)) {
      TensorJson.write(Map.of("input_ids", t), file);
    }
  }

  @Test
  void collectsEqualShapedSamplesFromADirectory(@TempDir Path dir) {
    writeSample(dir.resolve("a.json"), 4, 16, 1);
    writeSample(dir.resolve("b.json"), 4, 16, 2);
    try (CalibrationBatches c =
        CalibrationBatches.collect(new DirectoryCalibrationData(dir), dir.resolve("t.calib"))) {
      assertEquals(2, c.batches().size());
      assertEquals(4, c.batchSize());
      assertEquals(dir.resolve("t.calib"), c.cacheFile());
      Map<String, Tensor> expected = TensorJson.read(dir.resolve("b.json"));
      assertArrayEquals(
          expected.get("input_ids").toLongArray(),
          c.batches().get(1).get("input_ids").toLongArray());
      expected.values().forEach(Tensor::close);
    }
  }

  @Test
  void rejectsSamplesOfAnotherShapeAndClosesWhatItRead(@TempDir Path dir) {
    List<Map<String, Tensor>> handedOut = new ArrayList<>();
    writeSample(dir.resolve("a.json"), 4, 16, 1);
    writeSample(dir.resolve("b.json"), 4, 12, 2);
    DirectoryCalibrationData files = new DirectoryCalibrationData(dir);
    CalibrationData recording =
        new CalibrationData() {
          @Override
          public Iterator<Map<String, Tensor>> batches() {
            Iterator<Map<String, Tensor>> it = files.batches();
            return new Iterator<>() {
              @Override
              public boolean hasNext() {
                return it.hasNext();
              }

              @Override
              public Map<String, Tensor> next() {
                Map<String, Tensor> b = it.next();
                handedOut.add(b);
                return b;
              }
            };
          }

          @Override
          public String description() {
            return files.description();
          }
        };
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class, () -> CalibrationBatches.collect(recording, null));
    assertTrue(e.getMessage().contains("[4, 12]"), e.getMessage());
    assertEquals(2, handedOut.size());
    handedOut.forEach(b -> b.values().forEach(t -> assertTrue(t.isClosed())));
  }

  @Test
  void emptySourceIsRefused() {
    CalibrationData empty =
        new CalibrationData() {
          @Override
          public Iterator<Map<String, Tensor>> batches() {
            return java.util.Collections.emptyIterator();
          }

          @Override
          public String description() {
            return "nothing";
          }
        };
    assertThrows(InvalidInputException.class, () -> CalibrationBatches.collect(empty, null));
  }
}
