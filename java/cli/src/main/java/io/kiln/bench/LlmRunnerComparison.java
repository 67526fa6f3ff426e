package io.kiln.bench;

import io.kiln.Device;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.OnnxDecoderRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.model.llama.LlamaOnnxExporter;
import io.kiln.util.ProgressBar;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;

/**
 * Times the two CPU model runners on one model in one process: Kiln's own float32 forward pass
 * against the same model exported to ONNX and run by ONNX Runtime (the peer). Prefill of a batch of
 * prompts, then greedy decode steps of the whole batch; the greedy tokens of both must agree. Both
 * runners stay open per batch size and take turns over the rounds (after an untimed one each), and
 * each ratio is the median over rounds of the two runners' rates in the same round.
 *
 * <p>Usage: {@code LlmRunnerComparison MODEL_DIR OUT_PREFIX [promptLen] [decodeSteps] [batches]
 * [rounds]}
 */
public final class LlmRunnerComparison {
  private static final String KILN = "kiln-cpu";
  private static final String PEER = "onnxruntime";

  private LlmRunnerComparison() {}

  /** One runner's prefill and decode of one batch. */
  record Run(double prefillTokensPerSecond, double decodeTokensPerSecond, int[] tokens) {}

  /** One batch size: each runner's runs, round by round. */
  record Level(int batch, List<Run> kiln, List<Run> peer) {
    double median(List<Run> runs, boolean prefill) {
      return ModelBenchmark.median(
          runs.stream()
              .map(r -> prefill ? r.prefillTokensPerSecond() : r.decodeTokensPerSecond())
              .toList());
    }

    /** The median over rounds of Kiln's rate over the peer's in the same round. */
    double ratio(boolean prefill) {
      List<Double> ratios = new ArrayList<>();
      for (int i = 0; i < kiln.size(); i++) {
        Run k = kiln.get(i);
        Run p = peer.get(i);
        ratios.add(
            prefill
                ? k.prefillTokensPerSecond() / p.prefillTokensPerSecond()
                : k.decodeTokensPerSecond() / p.decodeTokensPerSecond());
      }
      return ModelBenchmark.median(ratios);
    }

    boolean tokensEqual() {
      int[] first = kiln.get(0).tokens();
      return Stream.concat(kiln.stream(), peer.stream())
          .allMatch(r -> Arrays.equals(first, r.tokens()));
    }
  }

  public static void main(String[] args) throws IOException {
    Path model = Path.of(args[0]);
    Path out = Path.of(args[1]);
    int promptLen = args.length > 2 ? Integer.parseInt(args[2]) : 128;
    int steps = args.length > 3 ? Integer.parseInt(args[3]) : 16;
    String batches = args.length > 4 ? args[4] : "1,4";
    int rounds = args.length > 5 ? Integer.parseInt(args[5]) : 3;
    int threads = Runtime.getRuntime().availableProcessors();
    Path onnx = Files.createTempDirectory("kiln-runner-peer");
    System.err.println("exporting " + model + " to ONNX");
    LlamaOnnxExporter.export(model, onnx, false);

    List<Level> levels = new ArrayList<>();
    for (String b : batches.split(",")) {
      int batch = Integer.parseInt(b.trim());
      int blocksPerSequence = (promptLen + steps + 15) / 16;
      RunnerOptions options =
          RunnerOptions.defaults().withKvBlocks(batch * blocksPerSequence).withThreads(threads);
      KvPoolSpec pool = KvPoolSpec.ofUsableBlocks(options.kvBlocks(), options.blockSize());
      try (ModelRunner cpu = LlmRunners.open(model, Device.CPU, options);
          ModelRunner ort = OnnxDecoderRunner.open(onnx, pool, threads)) {
        Level level = new Level(batch, new ArrayList<>(), new ArrayList<>());
        // Round 0 is untimed: the JIT and ONNX Runtime's first-run allocations.
        for (int round = 0; round <= rounds; round++) {
          // The runners take turns going first, so that neither always runs on a warmer machine.
          boolean kilnFirst = round % 2 == 0;
          for (ModelRunner runner : kilnFirst ? List.of(cpu, ort) : List.of(ort, cpu)) {
            String name = runner == cpu ? KILN : PEER;
            Run run = time(name, runner, batch, promptLen, steps, blocksPerSequence, round, rounds);
            if (round > 0) {
              (runner == cpu ? level.kiln() : level.peer()).add(run);
            }
          }
        }
        levels.add(level);
      }
    }

    StringBuilder md =
        new StringBuilder("# Kiln CPU runner vs ONNX Runtime on the exported graph\n\n");
    md.append("- date: ").append(Instant.now()).append('\n');
    md.append("- model: ").append(model).append('\n');
    md.append("- prompt_len: ")
        .append(promptLen)
        .append(", decode steps: ")
        .append(steps)
        .append(", threads: ")
        .append(threads)
        .append(", rounds: ")
        .append(rounds)
        .append(" after an untimed one, the runners taking turns going first")
        .append('\n');
    md.append("- machine: ").append(MachineInfo.describe()).append("\n\n");
    md.append(
        "Rates are medians over the rounds; a ratio is the median over rounds of Kiln's rate over"
            + " ONNX Runtime's in the same round.\n\n");
    md.append(
        "| batch | runner | prefill tok/s | decode tok/s | prefill vs onnxruntime"
            + " | decode vs onnxruntime | greedy tokens equal |\n");
    md.append("|---:|---|---:|---:|---:|---:|---|\n");
    List<Map<String, Object>> json = new ArrayList<>();
    for (Level level : levels) {
      boolean equal = level.tokensEqual();
      for (String runner : List.of(KILN, PEER)) {
        List<Run> runs = runner.equals(KILN) ? level.kiln() : level.peer();
        double prefill = level.median(runs, true);
        double decode = level.median(runs, false);
        double prefillRatio = runner.equals(KILN) ? level.ratio(true) : 1;
        double decodeRatio = runner.equals(KILN) ? level.ratio(false) : 1;
        md.append(
            String.format(
                Locale.ROOT,
                "| %d | %s | %.1f | %.2f | %.2fx | %.2fx | %s |%n",
                level.batch(),
                runner,
                prefill,
                decode,
                prefillRatio,
                decodeRatio,
                equal));
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("batch", level.batch());
        j.put("runner", runner);
        j.put("prefill_tokens_per_s", prefill);
        j.put("decode_tokens_per_s", decode);
        j.put("prefill_vs_onnxruntime", prefillRatio);
        j.put("decode_vs_onnxruntime", decodeRatio);
        j.put(
            "prefill_tokens_per_s_per_round",
            runs.stream().map(Run::prefillTokensPerSecond).toList());
        j.put(
            "decode_tokens_per_s_per_round",
            runs.stream().map(Run::decodeTokensPerSecond).toList());
        j.put("greedy_tokens_equal", equal);
        json.add(j);
      }
    }
    md.append(String.format("%nload average after the run: %s%n", ReportFiles.loadAverage()));
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("model", model.toString());
    root.put("prompt_len", promptLen);
    root.put("decode_steps", steps);
    root.put("rounds", rounds);
    root.put("machine", MachineInfo.describe());
    root.put("rows", json);
    ReportFiles.writeJson(Path.of(out + ".json"), root);
    plot(levels, Path.of(out + ".png"));
    System.out.print(md);
  }

  /** Prefill and decode throughput of both runners per batch size, side by side. */
  private static void plot(List<Level> levels, Path png) {
    List<org.knowm.xchart.internal.chartpart.Chart<?, ?>> charts = new ArrayList<>();
    for (boolean prefill : new boolean[] {true, false}) {
      CategoryChart chart =
          new CategoryChartBuilder()
              .width(560)
              .height(400)
              .title((prefill ? "prefill" : "decode") + " tokens/s (CPU float32)")
              .xAxisTitle("batch")
              .yAxisTitle("tokens/s")
              .build();
      List<String> batches = levels.stream().map(level -> Integer.toString(level.batch())).toList();
      chart.addSeries(
          KILN, batches, levels.stream().map(l -> l.median(l.kiln(), prefill)).toList());
      chart.addSeries(
          PEER, batches, levels.stream().map(l -> l.median(l.peer(), prefill)).toList());
      charts.add(chart);
    }
    Charts.savePng(png, charts);
  }

  private static Run time(
      String name,
      ModelRunner runner,
      int batch,
      int promptLen,
      int steps,
      int blocksPerSequence,
      int round,
      int rounds) {
    int vocab = runner.spec().vocabSize();
    SplittableRandom random = new SplittableRandom(7);
    List<SequenceChunk> prefill = new ArrayList<>();
    for (int s = 0; s < batch; s++) {
      int[] prompt = random.ints(promptLen, 0, vocab).toArray();
      int[] table = new int[blocksPerSequence];
      // Tables are built by hand here, without the engine's block manager: skip the null block 0.
      for (int i = 0; i < table.length; i++) {
        table[i] = 1 + s * blocksPerSequence + i;
      }
      prefill.add(new SequenceChunk(s, prompt, 0, table, true));
    }
    long start = System.nanoTime();
    float[][] logits = runner.forward(prefill);
    double prefillSeconds = (System.nanoTime() - start) / 1e9;
    int[] tokens = new int[batch * steps];
    start = System.nanoTime();
    ProgressBar progress = new ProgressBar(System.err, steps);
    for (int step = 0; step < steps; step++) {
      List<SequenceChunk> decode = new ArrayList<>();
      for (int s = 0; s < batch; s++) {
        int next = argmax(logits[s]);
        tokens[s * steps + step] = next;
        decode.add(
            new SequenceChunk(
                s, new int[] {next}, promptLen + step, prefill.get(s).blockTable(), true));
      }
      progress.step(
          String.format(
              "%s batch %d round %d/%d: decode step %d/%d",
              name, batch, round, rounds, step + 1, steps));
      logits = runner.forward(decode);
    }
    double decodeSeconds = (System.nanoTime() - start) / 1e9;
    return new Run(batch * promptLen / prefillSeconds, batch * steps / decodeSeconds, tokens);
  }

  private static int argmax(float[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }
}
