package io.kiln.bench.gpu;

import io.kiln.Device;
import io.kiln.bench.CallTimer;
import io.kiln.bench.LlmBenchmark;
import io.kiln.bench.MachineInfo;
import io.kiln.bench.ModelBenchmark;
import io.kiln.bench.ReportFiles;
import io.kiln.bench.SpecCostModel;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.execution.llm.gpu.DecodeStage;
import io.kiln.execution.llm.gpu.GpuLlamaRunner;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Where the time of one greedy speculation cycle goes, by timing each kind of runner call the
 * engine makes in it, alone, on the runners the engine would open: the draft's first round (the
 * known token it lacks and the last, one logit), its later rounds (one token), the target's
 * verification (K + 1 positions, every one with a greedy token) and, for the ratio, a plain decode
 * step. A cycle that accepts every proposal costs one first round, K - 1 later rounds and one
 * verification, and yields K + 1 tokens; the gap between that sum and a measured cycle is the
 * engine's own time. On CUDA each kind's step is also replayed alone on the device, which splits a
 * call into device time and the host's round trip (inputs up, launch, wait, tokens down), and the
 * target's two steps stage by stage.
 *
 * <p>Usage: {@code SpecCycleBench TARGET_DIR DRAFT_DIR cpu|cuda K CONTEXT OUT_PREFIX COMMAND
 * [INT8_LM_HEAD]}, INT8_LM_HEAD {@code draft} (default) or {@code off}.
 */
public final class SpecCycleBench {
  private static final int WARM_UP = 10;
  private static final int SAMPLES = 60;
  private static final long PROMPT_SEED = 11;

  private SpecCycleBench() {}

  /** One kind of runner call: which runner, how many tokens, how many of them want a token. */
  record Call(String name, boolean onDraft, int tokens, int greedyRows) {}

  public static void main(String[] args) {
    Path targetDir = Path.of(args[0]);
    Path draftDir = Path.of(args[1]);
    Device device = Device.parse(args[2]);
    int k = Integer.parseInt(args[3]);
    int context = Integer.parseInt(args[4]);
    String out = args[5];
    String command = args[6];
    RunnerOptions.Int8LmHead int8LmHead =
        args.length > 7
            ? RunnerOptions.Int8LmHead.parse(args[7])
            : RunnerOptions.defaults().int8LmHead();

    int blockSize = 16;
    int blocks = (context + k + 2 + blockSize - 1) / blockSize;
    RunnerOptions common =
        RunnerOptions.defaults()
            .withKvBlocks(blocks)
            .withBlockSize(blockSize)
            .withMaxNumSeqs(1)
            .withInt8LmHead(int8LmHead);
    if (device == Device.CUDA) {
      common = common.withStorage(RunnerOptions.Storage.F16);
    }
    // As the engine opens them: the target with graphs for its verification steps, the draft for
    // its two-position first round.
    RunnerOptions targetOptions = common.forTarget(SpeculativeConfig.draft(k));
    List<Call> calls =
        List.of(
            new Call(SpecCostModel.DECODE_CALL, false, 1, 1),
            new Call(SpecCostModel.verificationCall(k), false, k + 1, k + 1),
            new Call(SpecCostModel.DRAFT_FIRST_ROUND_CALL, true, 2, 1),
            new Call("draft later round (1 position)", true, 1, 1));
    double[][] samples;
    Map<String, Map<String, Double>> stages = new LinkedHashMap<>();
    Instant started = Instant.now();
    try (ModelRunner target = LlmRunners.open(targetDir, device, targetOptions);
        ModelRunner draft = LlmRunners.open(draftDir, device, common.forDraft())) {
      int[] table = new int[blocks];
      Arrays.setAll(table, i -> 1 + i); // block 0 is the pool's null block
      int[] prompt =
          LlmBenchmark.randomPrompts(target.spec().vocabSize(), 1, context + k + 2, PROMPT_SEED)
              .get(0);
      for (ModelRunner runner : List.of(target, draft)) {
        runner.forward(
            List.of(new SequenceChunk(1, Arrays.copyOf(prompt, context), 0, table, true)));
      }
      List<CallTimer.Call> timed = new ArrayList<>();
      for (Call call : calls) {
        int start = context + 1 - (call.onDraft() ? call.tokens() - 1 : 0);
        int[] tokens = Arrays.copyOfRange(prompt, start, start + call.tokens());
        timed.add(
            new CallTimer.Call(
                call.onDraft() ? draft : target,
                List.of(new SequenceChunk(1, tokens, start, table, call.greedyRows()))));
      }
      // On CUDA, once, right after each kind ran: its step replayed alone on the device (the rest
      // of a call is the host's round trip), and the target's two stage by stage.
      samples =
          CallTimer.measure(
              timed,
              WARM_UP,
              SAMPLES,
              c -> {
                if (timed.get(c).runner() instanceof GpuLlamaRunner gpu) {
                  Map<String, Double> millis = new LinkedHashMap<>();
                  millis.put("all", DecodeRoofline.stageMillis(gpu, DecodeStage.ALL, SAMPLES));
                  if (!calls.get(c).onDraft()) {
                    millis.putAll(DecodeRoofline.lastStepStages(gpu, SAMPLES));
                  }
                  stages.put(calls.get(c).name(), millis);
                }
              });
    }
    double[] medians = new double[calls.size()];
    for (int c = 0; c < calls.size(); c++) {
      medians[c] = ModelBenchmark.median(samples[c]);
    }
    double decode = medians[0];
    double cycle =
        new SpecCostModel(decode, Map.of(k, medians[1]), medians[3], medians[2])
            .draftCycleMillis(k, 1);
    double modeledSpeedup = (k + 1) * decode / cycle;

    StringBuilder md = new StringBuilder("# One greedy speculation cycle, call by call\n\n");
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("date", started.toString());
    header.put("command", command);
    header.put("machine", MachineInfo.describe());
    header.put("device", device.name().toLowerCase(Locale.ROOT));
    header.put("target", targetDir.toString());
    header.put("draft", draftDir.toString());
    header.put("int8_lm_head", int8LmHead.label());
    header.put("spec_tokens", k);
    header.put("context", context);
    header.put(
        "samples", SAMPLES + " per call kind after " + WARM_UP + " warm-up, the kinds in turn");
    header.forEach((key, v) -> md.append("- ").append(key).append(": ").append(v).append('\n'));
    md.append(
        "\n| call | median ms | vs target decode | device replay ms | host round trip ms |\n"
            + "|---|---:|---:|---:|---:|\n");
    List<Map<String, Object>> rows = new ArrayList<>();
    for (int c = 0; c < calls.size(); c++) {
      Map<String, Double> replayed = stages.get(calls.get(c).name());
      double onDevice = replayed == null ? Double.NaN : replayed.get("all");
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %.4f | %.2fx | %s | %s |%n",
              calls.get(c).name(),
              medians[c],
              medians[c] / decode,
              Double.isNaN(onDevice) ? "-" : String.format(Locale.ROOT, "%.4f", onDevice),
              Double.isNaN(onDevice)
                  ? "-"
                  : String.format(Locale.ROOT, "%.4f", medians[c] - onDevice)));
      Map<String, Object> row = new LinkedHashMap<>();
      row.put("call", calls.get(c).name());
      row.put("median_ms", medians[c]);
      if (!Double.isNaN(onDevice)) {
        row.put("device_replay_ms", onDevice);
      }
      row.put("samples_ms", samples[c]);
      rows.add(row);
    }
    md.append(
        String.format(
            Locale.ROOT,
            "%nA cycle that accepts all %d proposals: verification + first round + %d later"
                + " rounds = %.4f ms for %d tokens, against %.4f ms for %d plain decode steps:"
                + " at most %.2fx before the engine's own time.%n",
            k,
            k - 1,
            cycle,
            k + 1,
            (k + 1) * decode,
            k + 1,
            modeledSpeedup));
    if (stages.containsKey(calls.get(0).name()) && stages.containsKey(calls.get(1).name())) {
      appendStages(md, stages, calls.get(0).name(), calls.get(1).name());
    }
    Map<String, Object> json = new LinkedHashMap<>(header);
    json.put("calls", rows);
    json.put("stage_replay_ms", stages);
    json.put("cycle_ms", cycle);
    json.put("plain_ms_per_token", decode);
    json.put("modeled_speedup", modeledSpeedup);
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    ReportFiles.writeJson(Path.of(out + ".json"), json);
    System.out.print(md);
  }

  /** Device time of the decode step and the verification, whole and stage by stage. */
  private static void appendStages(
      StringBuilder md, Map<String, Map<String, Double>> stages, String decode, String verify) {
    md.append(
        "\nThe target's two steps replayed from graphs, whole and one stage at a time (device ms"
            + " per replay; a stage alone, so the parts need not add up to the whole):\n\n");
    md.append("| stage | decode | verification | verification / decode |\n|---|---:|---:|---:|\n");
    for (String stage : stages.get(decode).keySet()) {
      double d = stages.get(decode).get(stage);
      double v = stages.get(verify).get(stage);
      md.append(String.format(Locale.ROOT, "| %s | %.4f | %.4f | %.2fx |%n", stage, d, v, v / d));
    }
  }
}
