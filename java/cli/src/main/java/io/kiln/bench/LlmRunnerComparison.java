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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;

/**
 * Times the two CPU model runners on one model in one process: Kiln's own float32 forward pass
 * against the same model exported to ONNX and run by ONNX Runtime (the peer). Prefill of a batch of
 * prompts, then greedy decode steps of the whole batch; the greedy tokens of both must agree.
 *
 * <p>Usage: {@code LlmRunnerComparison MODEL_DIR OUT_PREFIX [promptLen] [decodeSteps] [batches]}
 */
public final class LlmRunnerComparison {
  private LlmRunnerComparison() {}

  record Row(
      String runner,
      int batch,
      double prefillTokensPerSecond,
      double decodeTokensPerSecond,
      int[] tokens) {}

  public static void main(String[] args) throws IOException {
    Path model = Path.of(args[0]);
    Path out = Path.of(args[1]);
    int promptLen = args.length > 2 ? Integer.parseInt(args[2]) : 128;
    int steps = args.length > 3 ? Integer.parseInt(args[3]) : 16;
    String batches = args.length > 4 ? args[4] : "1,4";
    int threads = Runtime.getRuntime().availableProcessors();
    Path onnx = Files.createTempDirectory("kiln-runner-peer");
    System.err.println("exporting " + model + " to ONNX");
    LlamaOnnxExporter.export(model, onnx, false);

    List<Row> rows = new ArrayList<>();
    for (String b : batches.split(",")) {
      int batch = Integer.parseInt(b.trim());
      int blocksPerSequence = (promptLen + steps + 15) / 16;
      RunnerOptions options =
          RunnerOptions.defaults().withKvBlocks(batch * blocksPerSequence).withThreads(threads);
      try (ModelRunner cpu = LlmRunners.open(model, Device.CPU, options)) {
        rows.add(time("kiln-cpu", cpu, batch, promptLen, steps, blocksPerSequence));
      }
      KvPoolSpec pool = KvPoolSpec.ofUsableBlocks(options.kvBlocks(), options.blockSize());
      try (ModelRunner ort = OnnxDecoderRunner.open(onnx, pool, threads)) {
        rows.add(time("onnxruntime", ort, batch, promptLen, steps, blocksPerSequence));
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
        .append('\n');
    md.append("- machine: ").append(MachineInfo.describe()).append("\n\n");
    md.append(
        "| batch | runner | prefill tok/s | decode tok/s | decode vs onnxruntime | greedy tokens equal |\n");
    md.append("|---:|---|---:|---:|---:|---|\n");
    List<Map<String, Object>> json = new ArrayList<>();
    for (int i = 0; i < rows.size(); i += 2) {
      Row cpu = rows.get(i);
      Row ort = rows.get(i + 1);
      boolean equal = java.util.Arrays.equals(cpu.tokens(), ort.tokens());
      for (Row r : List.of(cpu, ort)) {
        md.append(
            String.format(
                "| %d | %s | %.1f | %.2f | %.2fx | %s |%n",
                r.batch(),
                r.runner(),
                r.prefillTokensPerSecond(),
                r.decodeTokensPerSecond(),
                r.decodeTokensPerSecond() / ort.decodeTokensPerSecond(),
                equal));
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("batch", r.batch());
        j.put("runner", r.runner());
        j.put("prefill_tokens_per_s", r.prefillTokensPerSecond());
        j.put("decode_tokens_per_s", r.decodeTokensPerSecond());
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
    root.put("machine", MachineInfo.describe());
    root.put("rows", json);
    ReportFiles.writeJson(Path.of(out + ".json"), root);
    plot(rows, Path.of(out + ".png"));
    System.out.print(md);
  }

  /** Prefill and decode throughput of both runners per batch size, side by side. */
  private static void plot(List<Row> rows, Path png) {
    List<org.knowm.xchart.internal.chartpart.Chart<?, ?>> charts = new ArrayList<>();
    for (String phase : List.of("prefill", "decode")) {
      CategoryChart chart =
          new CategoryChartBuilder()
              .width(560)
              .height(400)
              .title(phase + " tokens/s (CPU float32)")
              .xAxisTitle("batch")
              .yAxisTitle("tokens/s")
              .build();
      for (String runner : List.of("kiln-cpu", "onnxruntime")) {
        List<String> batches = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        for (Row r : rows) {
          if (r.runner().equals(runner)) {
            batches.add(Integer.toString(r.batch()));
            values.add(
                phase.equals("prefill") ? r.prefillTokensPerSecond() : r.decodeTokensPerSecond());
          }
        }
        chart.addSeries(runner, batches, values);
      }
      charts.add(chart);
    }
    Charts.savePng(png, charts);
  }

  private static Row time(
      String name, ModelRunner runner, int batch, int promptLen, int steps, int blocksPerSequence) {
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
    // Warm-up: the JIT and ONNX Runtime's first-run allocations are not what is measured.
    runner.forward(
        List.of(new SequenceChunk(99, new int[] {1, 2, 3}, 0, prefill.get(0).blockTable(), true)));
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
      progress.step(name + " batch " + batch + ": decode step " + (step + 1) + "/" + steps);
      logits = runner.forward(decode);
    }
    double decodeSeconds = (System.nanoTime() - start) / 1e9;
    return new Row(
        name, batch, batch * promptLen / prefillSeconds, batch * steps / decodeSeconds, tokens);
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
