package io.kiln.spark;

import io.kiln.BackendException;
import io.kiln.Device;
import java.util.Map;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * Which device a task's model runs on. With {@code device=cuda} (or {@code auto}) on an executor
 * that Spark gave GPUs ({@code spark.executor.resource.gpu.amount}, {@code
 * spark.task.resource.gpu.amount}), the GPU is the first address of the task's {@code gpu}
 * resource. Kiln runs on its process's CUDA device 0, so that address must be the executor's only
 * visible GPU: address 0, or the one {@code CUDA_VISIBLE_DEVICES} names (GPU isolation by the
 * cluster manager, or one executor per GPU).
 */
record DeviceAssignment(Device device, String gpuAddress) {
  static final String GPU = "gpu";

  /** The device for the running task (its Spark resources and this JVM's environment). */
  static DeviceAssignment forTask(String requested) {
    TaskContext task = TaskContext.get();
    Map<String, ResourceInformation> resources = task == null ? Map.of() : task.resourcesJMap();
    return resolve(requested, resources, System.getenv("CUDA_VISIBLE_DEVICES"));
  }

  static DeviceAssignment resolve(
      String requested, Map<String, ResourceInformation> resources, String cudaVisibleDevices) {
    Device wanted = Device.parse(requested);
    if (wanted == Device.CPU) {
      return new DeviceAssignment(Device.CPU, null);
    }
    ResourceInformation gpus = resources.get(GPU);
    if (gpus == null || gpus.addresses().length == 0) {
      // No GPU scheduling: Kiln picks (auto) or takes device 0 (cuda).
      return new DeviceAssignment(wanted, null);
    }
    String address = gpus.addresses()[0].trim();
    String visible = cudaVisibleDevices == null ? "" : cudaVisibleDevices.trim();
    boolean usable = visible.isEmpty() ? address.equals("0") : visible.equals(address);
    if (!usable) {
      throw new BackendException(
          "Spark gave this task GPU "
              + address
              + ", but Kiln runs on its process's CUDA device 0"
              + (visible.isEmpty() ? "" : " (CUDA_VISIBLE_DEVICES=" + visible + ")")
              + ": run one executor per GPU with only that GPU visible to it");
    }
    return new DeviceAssignment(Device.CUDA, address);
  }

  /**
   * For the model cache key and logs: {@code cpu}, {@code auto}, {@code cuda} or {@code cuda:N}.
   */
  String label() {
    return gpuAddress == null ? device.label() : device.label() + ":" + gpuAddress;
  }
}
