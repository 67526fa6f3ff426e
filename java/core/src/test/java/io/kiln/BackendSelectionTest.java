package io.kiln;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.engine.Backends;
import org.junit.jupiter.api.Test;

/** Backend choice with kiln-core alone on the classpath: ONNX Runtime, and clear refusals. */
class BackendSelectionTest {
  @Test
  void autoRunsOnnxRuntimeWithoutTheCudaModule() {
    assertEquals(Backend.ONNXRUNTIME, Backends.choose(Backend.AUTO, Device.AUTO).backend());
    assertEquals(Backend.ONNXRUNTIME, Backends.choose(Backend.AUTO, Device.CPU).backend());
    assertEquals(Device.CPU, Backends.choose(Backend.ONNXRUNTIME, Device.AUTO).device());
  }

  @Test
  void explicitGpuRequestsFailWithTheReason() {
    BackendException e =
        assertThrows(BackendException.class, () -> Backends.choose(Backend.TENSORRT, Device.AUTO));
    assertTrue(e.getMessage().contains("kiln-cuda"), e.getMessage());
    e = assertThrows(BackendException.class, () -> Backends.choose(Backend.AUTO, Device.CUDA));
    assertTrue(e.getMessage().contains("unavailable"), e.getMessage());
  }

  @Test
  void contradictoryChoicesAreRejected() {
    assertThrows(BackendException.class, () -> Backends.choose(Backend.ONNXRUNTIME, Device.CUDA));
    assertThrows(BackendException.class, () -> Backends.choose(Backend.TENSORRT, Device.CPU));
    assertThrows(InvalidInputException.class, () -> Backend.parse("nonsense"));
    assertThrows(InvalidInputException.class, () -> Device.parse("tpu"));
  }
}
