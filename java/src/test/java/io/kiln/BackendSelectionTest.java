package io.kiln;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kiln.engine.Backends;
import io.kiln.engine.GpuProbe;
import org.junit.jupiter.api.Test;

class BackendSelectionTest {
  @Test
  void autoFallsBackToOnnxRuntimeWithoutAGpu() {
    assumeTrue(GpuProbe.tensorRtUnavailableReason().isPresent(), "a GPU is present");
    assertEquals("onnxruntime", Backends.choose("auto", "auto").name());
    assertEquals("onnxruntime", Backends.choose("auto", "cpu").name());
  }

  @Test
  void explicitGpuRequestsFailWithTheReason() {
    assumeTrue(GpuProbe.tensorRtUnavailableReason().isPresent(), "a GPU is present");
    BackendException e =
        assertThrows(BackendException.class, () -> Backends.choose("tensorrt", "auto"));
    assertTrue(e.getMessage().contains("unavailable"), e.getMessage());
    assertThrows(BackendException.class, () -> Backends.choose("auto", "cuda"));
  }

  @Test
  void contradictoryChoicesAreRejected() {
    assertThrows(BackendException.class, () -> Backends.choose("onnxruntime", "cuda"));
    assertThrows(BackendException.class, () -> Backends.choose("tensorrt", "cpu"));
    assertThrows(BackendException.class, () -> Backends.choose("nonsense", "auto"));
  }
}
