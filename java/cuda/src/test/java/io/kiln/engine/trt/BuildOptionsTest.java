package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.kiln.Precision;
import java.util.List;
import org.junit.jupiter.api.Test;

class BuildOptionsTest {
  @Test
  void detailedLayersIsAFlagOfThePlanAndOfItsCacheKey() {
    BuildOptions plain = BuildOptions.builder().precision(Precision.FP16).build();
    BuildOptions detailed =
        BuildOptions.builder().precision(Precision.FP16).detailedLayers(true).build();
    assertEquals(List.of("FP16"), plain.flagNames());
    assertEquals(List.of("FP16", "DETAILED_LAYERS"), detailed.flagNames());
    EngineTarget h200 = new EngineTarget("10.6.0", "12.6", "NVIDIA H200", "9.0");
    assertNotEquals(
        EngineMetadata.expected("sha", "m.onnx", plain, h200).cacheKey(),
        EngineMetadata.expected("sha", "m.onnx", detailed, h200).cacheKey());
  }
}
