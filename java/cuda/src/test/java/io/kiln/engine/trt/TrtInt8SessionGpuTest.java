package io.kiln.engine.trt;

import static io.kiln.engine.trt.GpuTestSupport.*;
import static org.junit.jupiter.api.Assertions.*;

import io.kiln.Backend;
import io.kiln.DType;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.cuda.RequiresGpu;
import io.kiln.precision.PrecisionOptions;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An INT8 session on TensorRT: the float16 Q/DQ graph, built strongly typed, against ORT FP32. */
@Tag("gpu")
@RequiresGpu(RequiresGpu.Need.TENSORRT)
class TrtInt8SessionGpuTest {
  @TempDir Path dir;

  @Test
  void int8SessionBuildsStronglyTypedAndFollowsOnnxRuntime() throws Exception {
    assumeGpu();
    Path model = bertModel();
    Path cacheDir = dir.resolve("cache");
    Random rnd = new Random(System.nanoTime());
    try (Session s =
        Session.builder(model)
            .backend(Backend.TENSORRT)
            .precision(Precision.INT8)
            .precisionOptions(PrecisionOptions.defaults().withCalibration("random:8"))
            .maxBatchSize(8)
            .cacheDir(cacheDir)
            .build()) {
      for (int[] bs : new int[][] {{3, 19}, {8, 64}, {1, 7}}) {
        Map<String, Tensor> in = randomBert(rnd, bs[0], bs[1]);
        float[] ref = ortReference(model, in);
        try (Session.Result r = s.infer(in)) {
          Tensor h = r.first();
          assertEquals(DType.F32, h.dtype(), "callers keep float32 outputs");
          double err = relErr(h.toFloatArray(), ref);
          System.out.printf("INT8 session %dx%d rel err %.3g%n", bs[0], bs[1], err);
          // Calibrated on random:8, the H200 gave 0.7e-2 to 1.9e-2; a broken graph gives ~1.
          assertTrue(err <= 5e-2, "INT8 " + bs[0] + "x" + bs[1] + " rel err " + err);
        }
        in.values().forEach(Tensor::close);
      }
    }
    List<Path> sidecars;
    try (Stream<Path> files = Files.walk(cacheDir)) {
      sidecars = files.filter(p -> p.toString().endsWith(".plan.json")).toList();
    }
    assertEquals(1, sidecars.size(), "one engine: " + sidecars);
    String sidecar = Files.readString(sidecars.get(0));
    assertTrue(sidecar.contains("STRONGLY_TYPED"), sidecar);
  }
}
