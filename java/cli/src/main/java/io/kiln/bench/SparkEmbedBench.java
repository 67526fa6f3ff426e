package io.kiln.bench;

import io.kiln.Device;
import io.kiln.embedding.TextEmbedder;
import io.kiln.spark.KilnEmbedder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Rows/s of sentence embedding on this machine: in-process {@link TextEmbedder} against {@link
 * KilnEmbedder} on Spark local[1] and local[2], on the same texts in one run, the order rotating
 * each round. Spark's time covers the whole job (scheduling, row conversion, the model calls) but
 * not starting Spark or opening the model, which a warm-up pass does.
 */
public final class SparkEmbedBench {
  private static final String IN_PROCESS = "in-process TextEmbedder";
  private static final String LOCAL_1 = "Spark local[1]";
  private static final String LOCAL_2 = "Spark local[2]";
  private static final StructType SCHEMA =
      DataTypes.createStructType(
          List.of(
              DataTypes.createStructField("id", DataTypes.IntegerType, false),
              DataTypes.createStructField("text", DataTypes.StringType, false)));

  private SparkEmbedBench() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: SparkEmbedBench SENTENCES.txt OUT_PREFIX [texts] [rounds]");
      System.exit(2);
    }
    Path sentences = Path.of(args[0]);
    String out = args[1];
    int count = args.length > 2 ? Integer.parseInt(args[2]) : 1000;
    int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 3;
    List<String> texts = EmbedCpuBench.mixedTexts(Files.readAllLines(sentences), count, 42);
    String loadBefore = ReportFiles.loadAverage();
    Map<String, List<Double>> rowsPerSecond = new LinkedHashMap<>();
    List<String> names = List.of(IN_PROCESS, LOCAL_1, LOCAL_2);
    try (TextEmbedder embedder = TextEmbedder.defaultModel(b -> b.device(Device.CPU))) {
      embedder.embed(texts.subList(0, 100));
      for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < names.size(); k++) {
          String name = names.get((round + k) % names.size());
          double rate = name.equals(IN_PROCESS) ? inProcess(embedder, texts) : onSpark(name, texts);
          rowsPerSecond.computeIfAbsent(name, n -> new ArrayList<>()).add(rate);
          System.err.printf(Locale.ROOT, "round %d %-26s %7.1f rows/s%n", round + 1, name, rate);
        }
      }
    }
    SparkBenchReport.write(
        out, texts, rounds, rowsPerSecond, loadBefore, ReportFiles.loadAverage(), sentences);
  }

  private static double inProcess(TextEmbedder embedder, List<String> texts) {
    long start = System.nanoTime();
    embedder.embed(texts);
    return texts.size() / ((System.nanoTime() - start) / 1e9);
  }

  /**
   * One timed pass on a fresh local Spark: local[1] runs one task whose model uses both cores;
   * local[2] runs two tasks on one shared model, one thread each, so slots times threads is the
   * core count either way.
   */
  private static double onSpark(String name, List<String> texts) {
    boolean two = name.equals(LOCAL_2);
    SparkSession spark =
        SparkSession.builder()
            .master(two ? "local[2]" : "local[1]")
            .appName("kiln spark bench")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate();
    try {
      List<Row> rows = new ArrayList<>(texts.size());
      for (int i = 0; i < texts.size(); i++) {
        rows.add(RowFactory.create(i, texts.get(i)));
      }
      Dataset<Row> frame = spark.createDataFrame(rows, SCHEMA).repartition(two ? 2 : 1).cache();
      frame.count();
      KilnEmbedder embedder =
          new KilnEmbedder().setDevice("cpu").setBatchSize(32).setThreads(two ? 1 : 0);
      // Warm-up: opens this executor's model (kept across sessions) and runs the JIT.
      embedder.transform(frame.limit(100)).write().format("noop").mode("overwrite").save();
      long start = System.nanoTime();
      embedder.transform(frame).write().format("noop").mode("overwrite").save();
      return texts.size() / ((System.nanoTime() - start) / 1e9);
    } finally {
      spark.stop();
    }
  }
}
