package io.kiln.bench.gpu;

import io.kiln.BackendException;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.CudaGraph;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.gpu.DecodeStage;
import io.kiln.execution.llm.gpu.DeviceBuffer;
import io.kiln.execution.llm.gpu.GpuLlamaRunner;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.global.cudart;

/**
 * Batch-1 decode against the memory roofline: the bytes one decode step must read (every weight
 * matrix once, plus the sequence's K/V) over the step time, as a share of the device-to-device copy
 * bandwidth measured in the same process. The runner only hands out its last decode step's graph,
 * or a capture of some of its stages; the timing runs here.
 */
public final class DecodeRoofline {
  private DecodeRoofline() {}

  /**
   * @param gemm the dense layers' path in these steps, "skinny" or "cublas"
   * @param stepMillis wall time of one greedy decode step through {@code forwardGreedy}
   * @param replayMillis device time of one decode graph replay, back to back
   * @param denseReplayMillis device time of a replay of the same step's dense products alone (the
   *     projections, the MLP and the LM head, without norms, attention and the other small kernels)
   * @param stageMillis device time of a replay of each {@link DecodeStage} alone, by label
   * @param copyBytesPerSecond device-to-device copy, bytes read plus written per second
   */
  public record Result(
      String gemm,
      long bytesPerToken,
      double stepMillis,
      double replayMillis,
      double denseReplayMillis,
      Map<String, Double> stageMillis,
      long weightBytes,
      double copyBytesPerSecond,
      int promptLength,
      int steps) {

    /** Achieved read bandwidth of a forward step over the copy bandwidth. */
    public double stepFraction() {
      return bytesPerToken / (stepMillis / 1e3) / copyBytesPerSecond;
    }

    public double replayFraction() {
      return bytesPerToken / (replayMillis / 1e3) / copyBytesPerSecond;
    }

    /** The dense products' weight bytes over their own replay time, against the copy bandwidth. */
    public double denseFraction() {
      return weightBytes / (denseReplayMillis / 1e3) / copyBytesPerSecond;
    }

    public String line() {
      return String.format(
          Locale.ROOT,
          "batch-1 decode (%s GEMM): %.1f MB/token, step %.3f ms (%.1f%% of roofline),"
              + " graph replay %.3f ms (%.1f%%), of which dense products alone %.3f ms (%.0f%% of"
              + " the roofline for their weights), copy bandwidth %.0f GB/s",
          gemm,
          bytesPerToken / 1e6,
          stepMillis,
          100 * stepFraction(),
          replayMillis,
          100 * replayFraction(),
          denseReplayMillis,
          100 * denseFraction(),
          copyBytesPerSecond / 1e9);
    }

    public Map<String, Object> toMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("gemm", gemm);
      m.put("bytes_per_token", bytesPerToken);
      m.put("prompt_len", promptLength);
      m.put("decode_steps", steps);
      m.put("step_ms", stepMillis);
      m.put("graph_replay_ms", replayMillis);
      m.put("dense_replay_ms", denseReplayMillis);
      m.put("weight_bytes", weightBytes);
      m.put("dense_roofline_fraction", denseFraction());
      m.put("stage_replay_ms", stageMillis);
      m.put("copy_bandwidth_bytes_per_s", copyBytesPerSecond);
      m.put("step_roofline_fraction", stepFraction());
      m.put("replay_roofline_fraction", replayFraction());
      return m;
    }
  }

  /** Decodes {@code steps} tokens after a random prompt on blocks of the runner's idle pool. */
  public static Result measure(GpuLlamaRunner runner, int promptLength, int steps) {
    int bs = runner.kvPool().blockSize();
    int positions = promptLength + steps + 16;
    int[] table = new int[(positions + bs - 1) / bs];
    if (table.length + 1 > runner.kvPool().numBlocks()) {
      throw new BackendException("the KV pool is too small for the roofline run");
    }
    for (int i = 0; i < table.length; i++) {
      table[i] = 1 + i;
    }
    SplittableRandom rnd = new SplittableRandom(7);
    int[] prompt = new int[promptLength];
    for (int i = 0; i < prompt.length; i++) {
      prompt[i] = rnd.nextInt(runner.spec().vocabSize());
    }
    int chunkTokens = runner.maxTokensPerStep();
    int token = 0;
    for (int start = 0; start < promptLength; start += chunkTokens) {
      int end = Math.min(promptLength, start + chunkTokens);
      int[] greedy =
          runner
              .forwardGreedy(
                  List.of(
                      new SequenceChunk(
                          1,
                          Arrays.copyOfRange(prompt, start, end),
                          start,
                          table,
                          end == promptLength)))[0];
      if (greedy.length > 0) {
        token = greedy[0];
      }
    }
    // Steps as the engine runs greedy decoding: graph replay, argmax on the device, one int back.
    int position = promptLength;
    for (int i = 0; i < 8; i++) {
      token = decode(runner, table, token, position++);
    }
    long t0 = System.nanoTime();
    long kvRead = 0;
    for (int i = 0; i < steps; i++) {
      kvRead += (long) (position + 1) * runner.kvBytesPerPosition();
      token = decode(runner, table, token, position++);
    }
    double stepMillis = (System.nanoTime() - t0) / 1e6 / steps;
    long bytesPerToken = runner.weightBytesPerDecodeStep() + kvRead / steps;
    double replayMillis = replayMillis(runner.lastDecodeGraph(), steps);
    double denseMillis = stageMillis(runner, DecodeStage.DENSE, steps);
    Map<String, Double> stageMillis = lastStepStages(runner, steps);
    return new Result(
        runner.gemmPath(1),
        bytesPerToken,
        stepMillis,
        replayMillis,
        denseMillis,
        stageMillis,
        runner.weightBytesPerDecodeStep(),
        copyBandwidth(),
        promptLength,
        steps);
  }

  /**
   * Device milliseconds per replay of {@code graph}, one warm-up then {@code reps} back to back
   * (NaN without a graph: the last step ran eagerly).
   */
  static double replayMillis(CudaGraph graph, int reps) {
    return graph == null ? Double.NaN : graph.millisPerReplay(1, reps);
  }

  /**
   * Device milliseconds per replay of the runner's last step (any kind), one {@link DecodeStage} at
   * a time, by label.
   */
  static Map<String, Double> lastStepStages(GpuLlamaRunner runner, int reps) {
    Map<String, Double> millis = new LinkedHashMap<>();
    for (DecodeStage s : DecodeStage.values()) {
      millis.put(s.label(), stageMillis(runner, EnumSet.of(s), reps));
    }
    return millis;
  }

  /**
   * Device milliseconds per replay of only {@code stages} of the runner's last step: where the time
   * of its whole graph goes.
   */
  static double stageMillis(GpuLlamaRunner runner, Set<DecodeStage> stages, int reps) {
    try (CudaGraph part = runner.captureLastStepStages(stages)) {
      return replayMillis(part, reps);
    }
  }

  private static int decode(GpuLlamaRunner runner, int[] table, int token, int position) {
    return runner
        .forwardGreedy(List.of(new SequenceChunk(1, new int[] {token}, position, table, true)))[0][
        0];
  }

  /** Device-to-device copy of up to 1 GiB, bytes read plus written per second. */
  static double copyBandwidth() {
    long bytes = 1L << 30;
    long free = Cuda.memInfo()[0];
    while (bytes > (16L << 20) && 2 * bytes + (256L << 20) > free) {
      bytes /= 2;
    }
    try (DeviceBuffer a = new DeviceBuffer(bytes);
        DeviceBuffer b = new DeviceBuffer(bytes)) {
      CUevent_st start = new CUevent_st();
      CUevent_st stop = new CUevent_st();
      Cuda.check(cudart.cudaEventCreate(start), "cudaEventCreate");
      Cuda.check(cudart.cudaEventCreate(stop), "cudaEventCreate");
      try {
        for (int i = 0; i < 3; i++) {
          Cuda.check(
              cudart.cudaMemcpy(
                  Cuda.at(b.address()),
                  Cuda.at(a.address()),
                  bytes,
                  cudart.cudaMemcpyDeviceToDevice),
              "cudaMemcpy device to device");
        }
        int reps = 10;
        Cuda.check(cudart.cudaEventRecord(start, null), "cudaEventRecord");
        for (int i = 0; i < reps; i++) {
          Cuda.check(
              cudart.cudaMemcpyAsync(
                  Cuda.at(b.address()),
                  Cuda.at(a.address()),
                  bytes,
                  cudart.cudaMemcpyDeviceToDevice,
                  null),
              "cudaMemcpyAsync device to device");
        }
        Cuda.check(cudart.cudaEventRecord(stop, null), "cudaEventRecord");
        Cuda.check(cudart.cudaEventSynchronize(stop), "cudaEventSynchronize");
        float[] ms = new float[1];
        Cuda.check(cudart.cudaEventElapsedTime(ms, start, stop), "cudaEventElapsedTime");
        return 2.0 * bytes * reps / (ms[0] / 1e3);
      } finally {
        cudart.cudaEventDestroy(start);
        cudart.cudaEventDestroy(stop);
      }
    }
  }
}
