package io.kiln.execution.llm.gpu;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** What a {@link GpuLlamaRunner} measured while starting: where the device memory went. */
public record GpuStartupReport(
    String device,
    long totalBytes,
    long freeAtStartBytes,
    long weightBytes,
    double loadMillis,
    long activationBytes,
    int graphs,
    long graphBytes,
    double graphCaptureMillis,
    int kvBlocks,
    int blockSize,
    long kvBytes) {

  public long kvTokens() {
    return (long) (kvBlocks - 1) * blockSize;
  }

  public String line() {
    return String.format(
        Locale.ROOT,
        "%s: weights %.1f MiB (%.0f ms), activations %.1f MiB, %d decode graphs %.1f MiB"
            + " (%.0f ms), KV pool %d blocks x %d = %d tokens, %.1f MiB",
        device,
        weightBytes / 1048576.0,
        loadMillis,
        activationBytes / 1048576.0,
        graphs,
        graphBytes / 1048576.0,
        graphCaptureMillis,
        kvBlocks,
        blockSize,
        kvTokens(),
        kvBytes / 1048576.0);
  }

  public Map<String, Object> toMap() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("device", device);
    m.put("device_memory_bytes", totalBytes);
    m.put("free_at_start_bytes", freeAtStartBytes);
    m.put("weight_bytes", weightBytes);
    m.put("load_ms", loadMillis);
    m.put("activation_bytes", activationBytes);
    m.put("decode_graphs", graphs);
    m.put("graph_bytes", graphBytes);
    m.put("graph_capture_ms", graphCaptureMillis);
    m.put("kv_blocks", kvBlocks);
    m.put("kv_block_size", blockSize);
    m.put("kv_tokens", kvTokens());
    m.put("kv_bytes", kvBytes);
    return m;
  }

  static final class Builder {
    private String device;
    private long total;
    private long freeAtStart;
    private long weights;
    private double loadMillis;
    private long activations;
    private int graphs;
    private long graphBytes;
    private double captureMillis;
    private int kvBlocks;
    private int blockSize;
    private long kvBytes;

    void device(String name, long totalBytes, long free) {
      this.device = name;
      this.total = totalBytes;
      this.freeAtStart = free;
    }

    void weights(long bytes, double millis) {
      this.weights = bytes;
      this.loadMillis = millis;
    }

    void activations(long bytes) {
      this.activations = bytes;
    }

    void graphs(int count, long bytes, double millis) {
      this.graphs = count;
      this.graphBytes = bytes;
      this.captureMillis = millis;
    }

    void kv(int blocks, int size, long bytes) {
      this.kvBlocks = blocks;
      this.blockSize = size;
      this.kvBytes = bytes;
    }

    GpuStartupReport build() {
      return new GpuStartupReport(
          device,
          total,
          freeAtStart,
          weights,
          loadMillis,
          activations,
          graphs,
          graphBytes,
          captureMillis,
          kvBlocks,
          blockSize,
          kvBytes);
    }
  }
}
