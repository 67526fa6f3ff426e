package io.kiln.bench;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The markdown and JSON report of the Spark embedding bench, with the cluster arithmetic. */
final class SparkBenchReport {
  static final String COMMAND = "bench/cpu-spark.sh";

  private SparkBenchReport() {}

  static void write(
      String out,
      List<String> texts,
      int rounds,
      Map<String, List<Double>> rowsPerSecond,
      String loadBefore,
      String loadAfter,
      Path sentences) {
    List<String> names = new ArrayList<>(rowsPerSecond.keySet());
    double inProcess = ModelBenchmark.median(rowsPerSecond.get("in-process TextEmbedder"));
    double local1 = ModelBenchmark.median(rowsPerSecond.get("Spark local[1]"));
    double local2 = ModelBenchmark.median(rowsPerSecond.get("Spark local[2]"));
    double overhead1 = 1 - local1 / inProcess;
    double overhead2 = 1 - local2 / inProcess;
    int[] words = texts.stream().mapToInt(t -> t.split(" ").length).toArray();
    Map<String, Object> json = header(texts, rounds);
    json.put("words_min", Arrays.stream(words).min().orElse(0));
    json.put("words_max", Arrays.stream(words).max().orElse(0));
    json.put("words_mean", Arrays.stream(words).average().orElse(0));
    json.put("rows_per_second", rowsPerSecond);
    json.put(
        "median_rows_per_second",
        Map.of("in_process", inProcess, "local_1", local1, "local_2", local2));
    json.put("spark_overhead_local_1", overhead1);
    json.put("spark_overhead_local_2", overhead2);
    json.put("load_before", loadBefore);
    json.put("load_after", loadAfter);
    json.put("command", COMMAND);
    ReportFiles.writeJson(Path.of(out + ".json"), json);

    StringBuilder md = new StringBuilder();
    md.append("# Spark scale-out: KilnEmbedder on local[1] and local[2] against in-process\n\n");
    md.append("- date: ").append(json.get("date")).append('\n');
    md.append("- device: ").append(json.get("device")).append('\n');
    md.append("- machine: ").append(json.get("machine")).append('\n');
    md.append(ReportFiles.loadLine(loadBefore, loadAfter));
    md.append(
        String.format(
            Locale.ROOT,
            "- %d texts of %d to %d words (mean %.1f) built from %s, the same for all three;"
                + " all-MiniLM-L6-v2 FP32, batches of up to 32 sorted by length%n",
            texts.size(),
            json.get("words_min"),
            json.get("words_max"),
            json.get("words_mean"),
            sentences));
    md.append(
        String.format(
            Locale.ROOT,
            "- %d rounds, each embedding all texts once per system, the order rotating. In-process"
                + " and local[1] use both cores in one ONNX Runtime call at a time; local[2] runs two"
                + " tasks on the executor's one shared model, one thread each. Spark's time is the"
                + " whole job (scheduling, row conversion, model calls, a no-op sink) on a fresh"
                + " SparkSession, after a warm-up job that opened the model%n",
            rounds));
    md.append("- command: `").append(COMMAND).append("`\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "**Spark overhead against in-process: %.1f%% at local[1], %.1f%% at local[2]"
                + " (median rows/s %.1f in-process, %.1f local[1], %.1f local[2])**%n%n",
            100 * overhead1,
            100 * overhead2,
            inProcess,
            local1,
            local2));
    md.append("| system | median rows/s | vs in-process | per round |\n|---|---|---|---|\n");
    for (String name : names) {
      double median = ModelBenchmark.median(rowsPerSecond.get(name));
      List<String> per = new ArrayList<>();
      rowsPerSecond.get(name).forEach(v -> per.add(String.format(Locale.ROOT, "%.1f", v)));
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %.1f | %.3fx | %s |%n",
              name,
              median,
              median / inProcess,
              String.join(", ", per)));
    }
    md.append(arithmetic(local1));
    md.append("\n## JSON\n\n```json\n")
        .append(ReportFiles.JSON.valueToTree(json).toPrettyString())
        .append("\n```\n");
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    System.out.print(md);
  }

  /** What a cluster of such executors would do, on paper, from the measured local[1] rate. */
  private static String arithmetic(double perTwoCores) {
    double perCore = perTwoCores / 2;
    StringBuilder md = new StringBuilder("\n## Paper arithmetic for a cluster\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "`kiln batch embed` is a map-only job: each partition is read, embedded and written by"
                + " one task, with no shuffle, so executors do not wait on each other and the"
                + " job's rate is the sum of theirs until storage or the driver's scheduling"
                + " binds. Measured here: %.1f rows/s for one executor of 2 cores (local[1],"
                + " Spark overhead included), %.1f rows/s per core.%n%n",
            perTwoCores,
            perCore));
    md.append("| cluster | cores | rows/s on paper | 1 M rows in |\n|---|---|---|---|\n");
    int[][] clusters = {{1, 2}, {4, 8}, {10, 16}, {50, 16}};
    for (int[] c : clusters) {
      int cores = c[0] * c[1];
      double rate = perCore * cores;
      md.append(
          String.format(
              Locale.ROOT,
              "| %d executors x %d cores | %d | %.0f | %.1f min |%n",
              c[0],
              c[1],
              cores,
              rate,
              1e6 / rate / 60));
    }
    md.append(
        "\nThe rate per core is this machine's (a shared 2-core VM); the table assumes it holds"
            + " per core on larger hosts while each task's threads stay within its cores"
            + " (`spark.task.cpus` = `--threads`), which was not measured here. The overhead measured at local[1] carries over"
            + " per executor: rows cross from Spark to Java objects and back once per row,"
            + " whatever the cluster's size. Each executor opens the model once (seconds), paid"
            + " once per executor, not per task. On GPU executors the same sum holds per GPU, at"
            + " that GPU's batch rate (see the bench reports of `kiln bench`), one executor per"
            + " GPU.\n");
    return md.toString();
  }

  static Map<String, Object> header(List<String> texts, int rounds) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("date", Instant.now().toString());
    json.put("device", "this machine's CPU (no GPU)");
    json.put("machine", MachineInfo.describe());
    json.put("model", "all-MiniLM-L6-v2 (embedded), FP32, ONNX Runtime");
    json.put("texts", texts.size());
    json.put("rounds", rounds);
    return json;
  }
}
