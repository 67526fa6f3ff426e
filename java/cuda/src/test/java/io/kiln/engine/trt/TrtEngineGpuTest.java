package io.kiln.engine.trt;

import static io.kiln.engine.trt.GpuTestSupport.*;
import static org.junit.jupiter.api.Assertions.*;

import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.GraphStats;
import io.kiln.cuda.RequiresGpu;
import io.kiln.execution.batching.DynamicBatcher;
import io.kiln.model.ModelSource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** TensorRT on the public BERT test model, checked against ONNX Runtime FP32 on the CPU. */
@Tag("gpu")
@RequiresGpu(RequiresGpu.Need.TENSORRT)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TrtEngineGpuTest {
  private Path model;
  private Path work;
  private EngineCache cache;
  private EngineCache.Entry fp32;
  private EngineCache.Entry fp16;
  private final Random rnd = new Random(System.nanoTime());

  private static BuildOptions options(Precision p) {
    return BuildOptions.builder()
        .precision(p)
        .profile(ShapeProfile.of("1:4:8", "1:32:64"))
        .optLevel(3)
        .build();
  }

  @BeforeAll
  void buildEngines() throws Exception {
    assumeGpu();
    model = bertModel();
    work = Files.createTempDirectory("kiln-trt-test");
    cache = new EngineCache(work.resolve("engines"));
    TrtEngineBuilder builder = new TrtEngineBuilder(System.out::println);
    fp32 = builder.cached(cache, ModelSource.of(model), options(Precision.FP32));
    fp16 = builder.cached(cache, ModelSource.of(model), options(Precision.FP16));
    System.out.printf(
        "built FP32 in %.1f s, FP16 in %.1f s on %s%n",
        fp32.metadata().buildSeconds(), fp16.metadata().buildSeconds(), fp32.metadata().gpuName());
  }

  @AfterAll
  void cleanUp() throws Exception {
    if (work != null) {
      try (var s = Files.walk(work)) {
        s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  private void checkAgainstOrt(EngineCache.Entry entry, double tolerance, String label)
      throws Exception {
    try (TrtEngine engine = TrtEngine.load(entry, RuntimeOptions.defaults())) {
      int[][] shapes = {{3, 19}, {5, 40}, {1, 7}, {8, 64}};
      for (int[] bs : shapes) {
        Map<String, Tensor> in = randomBert(rnd, bs[0], bs[1]);
        float[] ref = ortReference(model, in);
        for (boolean graph : new boolean[] {false, true}) {
          Map<String, Tensor> out = engine.run(in, graph);
          Tensor h = out.values().iterator().next();
          assertEquals(bs[0], h.dim(0));
          assertEquals(bs[1], h.dim(1));
          double err = relErr(h.toFloatArray(), ref);
          System.out.printf("%s %dx%d graph=%s rel err %.3g%n", label, bs[0], bs[1], graph, err);
          assertTrue(
              err <= tolerance,
              label + " " + bs[0] + "x" + bs[1] + " rel err " + err + " > " + tolerance);
          out.values().forEach(Tensor::close);
        }
      }
    }
  }

  @Test
  void fp32MatchesOnnxRuntime() throws Exception {
    checkAgainstOrt(fp32, 1e-4, "FP32");
  }

  @Test
  void fp16MatchesOnnxRuntime() throws Exception {
    checkAgainstOrt(fp16, 2e-3, "FP16");
  }

  @Test
  void detailedPlansNameTheKernelsAndPlainPlansOnlyTheLayers() throws Exception {
    BuildOptions detailed =
        BuildOptions.builder()
            .precision(Precision.FP32)
            .profile(ShapeProfile.of("1:4:8", "1:32:64"))
            .optLevel(3)
            .detailedLayers(true)
            .build();
    EngineCache.Entry entry =
        new TrtEngineBuilder(System.out::println).cached(cache, ModelSource.of(model), detailed);
    var json = new com.fasterxml.jackson.databind.ObjectMapper();
    try (TrtEngine engine = TrtEngine.load(entry, RuntimeOptions.defaults());
        TrtEngine plain = TrtEngine.load(fp32, RuntimeOptions.defaults())) {
      var layers = json.readTree(engine.layerInformation()).get("Layers");
      long named = 0;
      for (var layer : layers) {
        named += layer.path("TacticName").asText("").isEmpty() ? 0 : 1;
      }
      System.out.printf("detailed FP32 plan: %d layers, %d with a kernel%n", layers.size(), named);
      assertTrue(named > 0 && named >= layers.size() / 2, layers.size() + " layers, " + named);
      var plainLayers = json.readTree(plain.layerInformation()).get("Layers");
      assertTrue(plainLayers.size() > 0);
      for (var layer : plainLayers) {
        assertTrue(layer.isTextual(), "a plain plan lists layer names only: " + layer);
      }
    }
    assertThrows(io.kiln.ClosedException.class, () -> closedEngine().layerInformation());
  }

  private TrtEngine closedEngine() {
    TrtEngine e = TrtEngine.load(fp32, RuntimeOptions.defaults());
    e.close();
    return e;
  }

  @Test
  void fp32MatchesTheCommittedReference() throws Exception {
    Path refFile = model.resolveSibling("reference.json");
    var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(refFile.toFile());
    int b = json.get("input_ids").size();
    int s = json.get("input_ids").get(0).size();
    Map<String, Tensor> in = new java.util.LinkedHashMap<>();
    for (String name : List.of("input_ids", "attention_mask", "token_type_ids")) {
      long[] v = new long[b * s];
      for (int r = 0; r < b; r++) {
        for (int t = 0; t < s; t++) {
          v[r * s + t] = json.get(name).get(r).get(t).asLong();
        }
      }
      in.put(name, Tensor.of(v, b, s));
    }
    var refNode = json.get("last_hidden_state");
    float[] ref = new float[refNode.size()];
    for (int i = 0; i < ref.length; i++) {
      ref[i] = (float) refNode.get(i).asDouble();
    }
    try (TrtEngine engine = TrtEngine.load(fp32, RuntimeOptions.defaults())) {
      Tensor h = engine.run(in).get("last_hidden_state");
      double err = relErr(h.toFloatArray(), ref);
      System.out.printf("FP32 vs reference.json rel err %.3g%n", err);
      assertTrue(err <= 1e-4, "rel err " + err);
    }
  }

  @Test
  void graphReplayEqualsEnqueueBitForBit() {
    try (TrtEngine engine = TrtEngine.load(fp16, RuntimeOptions.defaults())) {
      for (int[] bs : new int[][] {{2, 30}, {7, 50}}) {
        Map<String, Tensor> in = randomBert(rnd, bs[0], bs[1]);
        byte[] plain = engine.run(in, false).get("last_hidden_state").toByteArray();
        byte[] captured = engine.run(in, true).get("last_hidden_state").toByteArray();
        byte[] replayed = engine.run(in, true).get("last_hidden_state").toByteArray();
        assertArrayEquals(plain, captured, "first graph run differs from enqueue");
        assertArrayEquals(plain, replayed, "graph replay differs from enqueue");
      }
      GraphStats s = engine.graphStats();
      System.out.println("graph stats: " + s);
      assertEquals(2, s.captures());
      assertEquals(4, s.replays());
      assertEquals(2, s.hits());
      assertEquals(0, s.fallbacks());
    }
  }

  @Test
  void paddedBucketsReturnEachRequestsOwnRows() throws Exception {
    try (TrtEngine engine = TrtEngine.load(fp32, RuntimeOptions.defaults())) {
      int batch = 3;
      int seq = 19; // pads to bucket 4 x 32
      assertEquals(new Bucket(4, 32), engine.bucketFor(batch, seq));
      Map<String, Tensor> in = randomBert(rnd, batch, seq);
      float[] together = engine.run(in).get("last_hidden_state").toFloatArray();
      int rowLen = together.length / batch;
      for (int r = 0; r < batch; r++) {
        Map<String, Tensor> one = new java.util.LinkedHashMap<>();
        for (var e : in.entrySet()) {
          long[] all = e.getValue().toLongArray();
          one.put(
              e.getKey(),
              Tensor.of(java.util.Arrays.copyOfRange(all, r * seq, (r + 1) * seq), 1, seq));
        }
        float[] alone = engine.run(one).get("last_hidden_state").toFloatArray();
        float[] mine = java.util.Arrays.copyOfRange(together, r * rowLen, (r + 1) * rowLen);
        double err = relErr(mine, alone);
        assertTrue(err <= 1e-5, "row " + r + " differs from its own run: " + err);
        double errOrt = relErr(mine, ortReference(model, one));
        assertTrue(
            errOrt <= 1e-4, "row " + r + " differs from ORT on the unpadded request: " + errOrt);
      }
    }
  }

  @Test
  void invalidInputsAreTypedErrors() {
    try (TrtEngine engine = TrtEngine.load(fp32, RuntimeOptions.defaults())) {
      Map<String, Tensor> tooBig = randomBert(rnd, 9, 10);
      assertThrows(InvalidInputException.class, () -> engine.run(tooBig));
      Map<String, Tensor> wrongType = new java.util.LinkedHashMap<>(randomBert(rnd, 1, 10));
      wrongType.put("input_ids", Tensor.allocate(DType.I32, 1, 10));
      assertThrows(InvalidInputException.class, () -> engine.run(wrongType));
      Map<String, Tensor> missing = new java.util.LinkedHashMap<>(randomBert(rnd, 1, 10));
      missing.remove("attention_mask");
      assertThrows(InvalidInputException.class, () -> engine.run(missing));
    }
  }

  @Test
  void dynamicBatcherOnTheGpuKeepsRowsApart() throws Exception {
    try (TrtEngine engine = TrtEngine.load(fp32, RuntimeOptions.defaults());
        DynamicBatcher batcher = new DynamicBatcher(engine, 8, 2000)) {
      ExecutorService pool = Executors.newFixedThreadPool(8);
      List<Future<Double>> errs = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        long seed = rnd.nextLong();
        errs.add(
            pool.submit(
                () -> {
                  Random r = new Random(seed);
                  double worst = 0;
                  for (int i = 0; i < 10; i++) {
                    Map<String, Tensor> in = randomBert(r, 1, 8 + r.nextInt(40));
                    float[] got = batcher.infer(in).get("last_hidden_state").toFloatArray();
                    worst = Math.max(worst, relErr(got, ortReference(model, in)));
                  }
                  return worst;
                }));
      }
      for (Future<Double> f : errs) {
        assertTrue(f.get() <= 1e-4, "batched result differs from ORT: " + f.get());
      }
      pool.shutdown();
      System.out.println("batcher stats: " + batcher.stats());
      assertTrue(batcher.stats().batches() < batcher.stats().requests(), "nothing was merged");
    }
  }

  @Test
  void engineCacheHitsAndRebuildsACorruptPlan() throws Exception {
    TrtEngineBuilder builder = new TrtEngineBuilder(System.out::println);
    EngineCache.Entry again = builder.cached(cache, ModelSource.of(model), options(Precision.FP32));
    assertEquals(EngineCache.Outcome.HIT, again.outcome());
    byte[] bytes = Files.readAllBytes(again.file());
    bytes[bytes.length / 2] ^= 0x33;
    Files.write(again.file(), bytes);
    EngineCache.Entry rebuilt =
        builder.cached(cache, ModelSource.of(model), options(Precision.FP32));
    assertEquals(EngineCache.Outcome.REBUILT_CORRUPT, rebuilt.outcome());
    try (TrtEngine engine = TrtEngine.load(rebuilt.file(), RuntimeOptions.defaults())) {
      assertEquals(3, engine.inputs().size());
    }
  }

  @Test
  void loadingAndClosingTwentyTimesReturnsDeviceMemory() {
    byte[] plan = fp16.plan();
    Map<String, Tensor> in = randomBert(rnd, 4, 32);
    Runnable cycle =
        () -> {
          try (TrtEngine e = TrtEngine.load(plan, RuntimeOptions.defaults().withStreams(2))) {
            e.run(in, true).values().forEach(Tensor::close);
            e.run(randomBert(rnd, 8, 64), true).values().forEach(Tensor::close);
            e.run(in, false).values().forEach(Tensor::close);
          }
        };
    cycle.run(); // first use initializes CUDA, cuBLAS and TensorRT state that stays for the process
    long[] before = Cuda.memInfo();
    long lowest = before[0];
    for (int i = 0; i < 20; i++) {
      try (TrtEngine e = TrtEngine.load(plan, RuntimeOptions.defaults().withStreams(2))) {
        e.run(in, true).values().forEach(Tensor::close);
        e.run(randomBert(rnd, 8, 64), true).values().forEach(Tensor::close);
        lowest = Math.min(lowest, Cuda.memInfo()[0]);
      }
    }
    long[] after = Cuda.memInfo();
    long held = before[0] - lowest;
    long drift = before[0] - after[0];
    System.out.printf(
        "device memory: total %d MiB, free before %d MiB, after 20 cycles %d MiB (drift %+d KiB), held while open %d MiB%n",
        before[1] >> 20, before[0] >> 20, after[0] >> 20, drift >> 10, held >> 20);
    assertTrue(held > 0, "an open engine should hold device memory; the check could not fail");
    assertTrue(
        Math.abs(drift) <= before[1] / 100,
        "device memory not returned: drift " + drift + " bytes");
  }
}
