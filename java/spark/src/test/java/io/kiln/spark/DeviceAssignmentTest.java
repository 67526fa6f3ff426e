package io.kiln.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BackendException;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import java.util.Map;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

class DeviceAssignmentTest {
  private static Map<String, ResourceInformation> gpus(String... addresses) {
    return Map.of("gpu", new ResourceInformation("gpu", addresses));
  }

  @Test
  void cpuIgnoresTheTaskGpus() {
    DeviceAssignment d = DeviceAssignment.resolve("cpu", gpus("0"), null);
    assertEquals(Device.CPU, d.device());
    assertNull(d.gpuAddress());
    assertEquals("cpu", d.label());
  }

  @Test
  void withoutGpuSchedulingTheRequestStands() {
    assertEquals(Device.AUTO, DeviceAssignment.resolve("auto", Map.of(), null).device());
    DeviceAssignment cuda = DeviceAssignment.resolve("cuda", Map.of(), null);
    assertEquals(Device.CUDA, cuda.device());
    assertEquals("cuda", cuda.label());
  }

  @Test
  void theTaskGpuIsUsedWhenItIsTheProcessDevice() {
    DeviceAssignment zero = DeviceAssignment.resolve("cuda", gpus("0"), null);
    assertEquals(Device.CUDA, zero.device());
    assertEquals("cuda:0", zero.label());
    // auto on an executor that Spark gave a GPU means that GPU.
    assertEquals("cuda:0", DeviceAssignment.resolve("auto", gpus("0"), "").label());
    // Isolation: the executor sees only GPU 3, which CUDA numbers 0 inside the process.
    assertEquals("cuda:3", DeviceAssignment.resolve("gpu", gpus("3"), "3").label());
    // A task given two GPUs runs on the first.
    assertEquals("cuda:0", DeviceAssignment.resolve("cuda", gpus("0", "1"), null).label());
  }

  @Test
  void aGpuKilnCannotReachIsRefusedWithTheFix() {
    BackendException e =
        assertThrows(
            BackendException.class, () -> DeviceAssignment.resolve("cuda", gpus("2"), null));
    assertTrue(e.getMessage().contains("GPU 2"), e.getMessage());
    assertTrue(e.getMessage().contains("one executor per GPU"), e.getMessage());
    assertThrows(
        BackendException.class, () -> DeviceAssignment.resolve("cuda", gpus("2"), "0,1,2"));
  }

  @Test
  void anUnknownDeviceIsAnInputError() {
    assertThrows(
        InvalidInputException.class, () -> DeviceAssignment.resolve("tpu", Map.of(), null));
  }
}
