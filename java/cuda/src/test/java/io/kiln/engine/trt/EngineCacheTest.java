package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.ModelException;
import io.kiln.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Engine cache and sidecar checks; no GPU needed, the "build" is a stand-in. */
class EngineCacheTest {
  @TempDir Path dir;
  private final EngineTarget h100 =
      new EngineTarget("10.6.0", "12.6", "NVIDIA H100 80GB HBM3", "9.0");
  private final AtomicInteger builds = new AtomicInteger();
  private EngineCache cache;
  private EngineMetadata expected;

  @BeforeEach
  void setUp() {
    cache = new EngineCache(dir.resolve("engines"));
    BuildOptions options =
        BuildOptions.builder()
            .precision(Precision.FP16)
            .profiles(ShapeProfile.perBucket(new long[] {1, 8}, new long[] {128}))
            .build();
    expected = EngineMetadata.expected("ab12cd", "bert.onnx", options, h100);
  }

  private EngineCache.BuiltPlan fakeBuild() {
    builds.incrementAndGet();
    byte[] plan = new byte[4096];
    new Random().nextBytes(plan);
    return new EngineCache.BuiltPlan(plan, 0.5);
  }

  @Test
  void secondRequestIsAHitWithoutBuilding() {
    EngineCache.Entry first = cache.getOrBuild(expected, this::fakeBuild);
    EngineCache.Entry second = cache.getOrBuild(expected, this::fakeBuild);
    assertEquals(EngineCache.Outcome.BUILT, first.outcome());
    assertEquals(EngineCache.Outcome.HIT, second.outcome());
    assertEquals(1, builds.get());
    assertArrayEquals(first.plan(), second.plan());
    assertTrue(Files.exists(EngineMetadata.sidecarOf(first.file())));
    EngineMetadata m = EngineMetadata.read(EngineMetadata.sidecarOf(first.file()));
    assertEquals("NVIDIA H100 80GB HBM3", m.gpuName());
    assertEquals("9.0", m.computeCapability());
    assertEquals(java.util.List.of("batch=1,seq=128", "batch=8,seq=128"), m.profiles());
    assertEquals(java.util.List.of("FP16"), m.flags());
    assertEquals(4096, m.planBytes());
  }

  @Test
  void corruptPlanIsDetectedAndRebuilt() throws Exception {
    EngineCache.Entry first = cache.getOrBuild(expected, this::fakeBuild);
    byte[] bytes = Files.readAllBytes(first.file());
    bytes[100] ^= 0x5a;
    Files.write(first.file(), bytes);
    EngineCache.Entry again = cache.getOrBuild(expected, this::fakeBuild);
    assertEquals(EngineCache.Outcome.REBUILT_CORRUPT, again.outcome());
    assertEquals(2, builds.get());
    assertEquals(EngineCache.Outcome.HIT, cache.getOrBuild(expected, this::fakeBuild).outcome());
  }

  @Test
  void truncatedPlanIsDetectedAndRebuilt() throws Exception {
    EngineCache.Entry first = cache.getOrBuild(expected, this::fakeBuild);
    Files.write(first.file(), java.util.Arrays.copyOf(first.plan(), 1000));
    assertEquals(
        EngineCache.Outcome.REBUILT_CORRUPT, cache.getOrBuild(expected, this::fakeBuild).outcome());
  }

  @Test
  void planWithoutSidecarIsNotTrusted() throws Exception {
    EngineCache.Entry first = cache.getOrBuild(expected, this::fakeBuild);
    Files.delete(EngineMetadata.sidecarOf(first.file()));
    assertEquals(
        EngineCache.Outcome.REBUILT_CORRUPT, cache.getOrBuild(expected, this::fakeBuild).outcome());
  }

  @Test
  void staleSidecarIsDetectedAndRebuilt() throws Exception {
    EngineCache.Entry first = cache.getOrBuild(expected, this::fakeBuild);
    Path sidecar = EngineMetadata.sidecarOf(first.file());
    String json = Files.readString(sidecar).replace("\"10.6.0\"", "\"10.3.0\"");
    Files.writeString(sidecar, json);
    EngineCache.Entry again = cache.getOrBuild(expected, this::fakeBuild);
    assertEquals(EngineCache.Outcome.REBUILT_STALE, again.outcome());
    assertEquals("10.6.0", EngineMetadata.read(sidecar).tensorrtVersion());
  }

  @Test
  void cacheKeyChangesWithEveryBuildInput() {
    BuildOptions fp32 =
        BuildOptions.builder()
            .precision(Precision.FP32)
            .profiles(ShapeProfile.perBucket(new long[] {1, 8}, new long[] {128}))
            .build();
    EngineTarget h200 = new EngineTarget("10.6.0", "12.6", "NVIDIA H200", "9.0");
    assertNotEquals(
        expected.cacheKey(), EngineMetadata.expected("ab12cd", "bert.onnx", fp32, h100).cacheKey());
    assertNotEquals(
        expected.cacheKey(),
        EngineMetadata.expected("ab12cd", "bert.onnx", BuildOptions.builder().build(), h100)
            .cacheKey());
    assertNotEquals(
        expected.cacheKey(), EngineMetadata.expected("ffff", "bert.onnx", fp32, h100).cacheKey());
    assertNotEquals(
        EngineMetadata.expected("ab12cd", "bert.onnx", fp32, h100).cacheKey(),
        EngineMetadata.expected("ab12cd", "bert.onnx", fp32, h200).cacheKey());
  }

  @Test
  void planFromAnotherGpuOrVersionIsRefused() {
    Path plan = dir.resolve("model.plan");
    byte[] bytes = new byte[512];
    new Random().nextBytes(bytes);
    PlanFiles.write(plan, bytes, expected.withPlan(bytes, 1.0));
    assertArrayEquals(bytes, PlanFiles.readVerified(plan, h100).plan());
    EngineTarget l4 = new EngineTarget("10.6.0", "12.6", "NVIDIA L4", "8.9");
    ModelException e = assertThrows(ModelException.class, () -> PlanFiles.readVerified(plan, l4));
    assertTrue(e.getMessage().contains("NVIDIA L4"), e.getMessage());
    EngineTarget newer = new EngineTarget("10.8.0", "12.6", "NVIDIA H100 80GB HBM3", "9.0");
    e = assertThrows(ModelException.class, () -> PlanFiles.readVerified(plan, newer));
    assertTrue(e.getMessage().contains("TensorRT 10.6.0"), e.getMessage());
  }

  @Test
  void rangesAndProfilesParse() {
    assertEquals(new DimRange(1, 8, 32), DimRange.parse("1:8:32"));
    assertEquals(DimRange.fixed(128), DimRange.parse("128"));
    assertThrows(io.kiln.InvalidInputException.class, () -> DimRange.parse("8:1:32"));
    assertThrows(io.kiln.InvalidInputException.class, () -> DimRange.parse("a:b"));
    ShapeProfile p = ShapeProfile.of("1:8:32", "16:128:128");
    assertEquals(p, ShapeProfile.parse(p.toString()));
    assertTrue(p.contains(8, 64));
    assertFalse(p.contains(33, 64));
  }
}
