package io.kiln.bench.driver;

import static org.bytedeco.cuda.global.nvml.*;

import org.bytedeco.cuda.nvml.nvmlDevice_st;
import org.bytedeco.cuda.nvml.nvmlMemory_t;
import org.bytedeco.cuda.nvml.nvmlUtilization_t;
import org.bytedeco.javacpp.Loader;

/**
 * Samples GPU utilization and memory through NVML on a background thread while a measurement runs.
 * When NVML is missing, every reading is -1 and nothing fails.
 */
final class NvmlMonitor implements AutoCloseable {
  private final nvmlDevice_st device = new nvmlDevice_st();
  private final boolean ok;
  private volatile boolean sampling;
  private Thread thread;
  private long utilSum;
  private long samples;
  private long maxUsed;

  NvmlMonitor() {
    boolean ready;
    try {
      Loader.load(org.bytedeco.cuda.global.nvml.class);
      ready =
          nvmlInit_v2() == NVML_SUCCESS && nvmlDeviceGetHandleByIndex_v2(0, device) == NVML_SUCCESS;
    } catch (Throwable t) { // libnvidia-ml absent
      ready = false;
    }
    ok = ready;
  }

  String driverVersion() {
    if (!ok) {
      return "unknown";
    }
    byte[] b = new byte[96];
    if (nvmlSystemGetDriverVersion(b, b.length) != NVML_SUCCESS) {
      return "unknown";
    }
    int n = 0;
    while (n < b.length && b[n] != 0) {
      n++;
    }
    return new String(b, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
  }

  /** Device memory in use on the whole GPU, MiB. */
  long usedMiB() {
    if (!ok) {
      return -1;
    }
    try (nvmlMemory_t m = new nvmlMemory_t()) {
      return nvmlDeviceGetMemoryInfo(device, m) == NVML_SUCCESS ? m.used() >> 20 : -1;
    }
  }

  synchronized void start() {
    utilSum = 0;
    samples = 0;
    maxUsed = 0;
    if (!ok) {
      return;
    }
    sampling = true;
    thread =
        new Thread(
            () -> {
              try (nvmlUtilization_t u = new nvmlUtilization_t()) {
                while (sampling) {
                  if (nvmlDeviceGetUtilizationRates(device, u) == NVML_SUCCESS) {
                    synchronized (this) {
                      utilSum += u.gpu();
                      samples++;
                    }
                  }
                  long used = usedMiB();
                  synchronized (this) {
                    maxUsed = Math.max(maxUsed, used);
                  }
                  try {
                    Thread.sleep(20);
                  } catch (InterruptedException e) {
                    return;
                  }
                }
              }
            },
            "nvml-sampler");
    thread.setDaemon(true);
    thread.start();
  }

  /** Stops sampling; returns {mean utilization %, peak used MiB}, or -1s without NVML. */
  double[] stop() {
    sampling = false;
    if (thread != null) {
      try {
        thread.join(1000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    synchronized (this) {
      return samples == 0
          ? new double[] {-1, maxUsed > 0 ? maxUsed : -1}
          : new double[] {(double) utilSum / samples, maxUsed};
    }
  }

  @Override
  public void close() {
    sampling = false;
    if (ok) {
      nvmlShutdown();
    }
  }
}
