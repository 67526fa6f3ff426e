package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.spark.KilnSparkPlugin;
import io.kiln.spark.KilnTransformer;
import io.kiln.util.ProgressBar;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.stream.Stream;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.StructField;
import picocli.CommandLine;

/**
 * One {@code kiln batch} run: starts Spark on the master, reads the input, applies a Kiln
 * transformer, writes every input column plus its results, shows progress on stderr and prints a
 * summary with rows/s on stdout.
 */
final class BatchJob {
  /** The jars of kiln.jar's lib/ that executors need besides Spark's own. */
  private static final List<String> EXECUTOR_JAR_PREFIXES =
      List.of("kiln-", "javacpp", "onnxruntime", "onnx-", "dnnl", "opencl", "tokenizers", "api-");

  private final CommandLine.Model.CommandSpec spec;
  private final BatchOptions io;

  BatchJob(CommandLine.Model.CommandSpec spec, BatchOptions io) {
    this.spec = spec;
    this.io = io;
  }

  /** What the run did, for the summary and for tests. */
  record Summary(long rows, long errors, double seconds) {
    double rowsPerSecond() {
      return rows / Math.max(seconds, 1e-9);
    }
  }

  Summary run(Function<Dataset<Row>, KilnTransformer> transformer) {
    io.checkRanges(spec);
    BatchOptions.Format in = BatchOptions.Format.of(spec, "--input", io.input);
    BatchOptions.Format out = BatchOptions.Format.of(spec, "--output", io.output);
    if (io.local() && !Files.exists(io.input)) {
      throw new InvalidInputException("input not found: " + io.input);
    }
    if (Files.exists(io.output)) {
      throw new InvalidInputException("output already exists: " + io.output);
    }
    SparkSession spark = session();
    try {
      Dataset<Row> rows = read(spark, in);
      if (io.partitions != null) {
        rows = rows.repartition(io.partitions);
      }
      KilnTransformer model = transformer.apply(rows);
      model.transformSchema(rows.schema());
      int tasks = rows.rdd().getNumPartitions();
      PrintStream err = System.err;
      ProgressBar progress = new ProgressBar(err, tasks);
      SparkListener listener = new TaskProgress(progress, tasks);
      spark.sparkContext().addSparkListener(listener);
      long start = System.nanoTime();
      try {
        write(model.transform(rows), out);
      } finally {
        spark.sparkContext().removeSparkListener(listener);
        progress.finish();
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      Row counts =
          read(spark, out, io.output)
              .agg(functions.count(functions.lit(1)), functions.count(model.getErrorCol()))
              .first();
      Summary summary = new Summary(counts.getLong(0), counts.getLong(1), seconds);
      PrintWriter stdout = spec.commandLine().getOut();
      stdout.printf(
          Locale.ROOT,
          "%d rows (%d with an error) in %.1f s, %.1f rows/s on %s, written to %s%n",
          summary.rows(),
          summary.errors(),
          summary.seconds(),
          summary.rowsPerSecond(),
          io.master,
          io.output);
      stdout.flush();
      return summary;
    } catch (Exception e) {
      // Spark throws checked exceptions undeclared (Scala); a failed task's Kiln error is inside.
      throw kilnCause(e);
    } finally {
      spark.stop();
    }
  }

  private SparkSession session() {
    SparkSession.Builder b =
        SparkSession.builder()
            .master(io.master)
            .appName("kiln batch")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.plugins", KilnSparkPlugin.class.getName());
    if (io.local()) {
      b.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1");
    } else {
      List<String> jars = executorJars();
      if (!jars.isEmpty()) {
        b.config("spark.jars", String.join(",", jars));
      }
    }
    return b.getOrCreate();
  }

  /** kiln.jar and the jars of its lib/ that a Spark executor lacks (empty outside kiln.jar). */
  static List<String> executorJars() {
    try {
      Path self =
          Path.of(BatchJob.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      Path lib = self.resolveSibling("lib");
      if (!Files.isRegularFile(self) || !Files.isDirectory(lib)) {
        return List.of();
      }
      List<String> jars = new ArrayList<>();
      jars.add(self.toString());
      try (Stream<Path> files = Files.list(lib)) {
        files
            .filter(
                p ->
                    EXECUTOR_JAR_PREFIXES.stream().anyMatch(p.getFileName().toString()::startsWith))
            .sorted()
            .forEach(p -> jars.add(p.toString()));
      }
      return jars;
    } catch (IOException | URISyntaxException | SecurityException e) {
      return List.of();
    }
  }

  private Dataset<Row> read(SparkSession spark, BatchOptions.Format format) {
    return read(spark, format, io.input);
  }

  private static Dataset<Row> read(SparkSession spark, BatchOptions.Format format, Path path) {
    var reader = spark.read().format(format.spark);
    if (format == BatchOptions.Format.CSV) {
      reader = reader.option("header", "true");
    }
    return reader.load(path.toString());
  }

  private void write(Dataset<Row> result, BatchOptions.Format format) {
    Dataset<Row> rows = result;
    if (format == BatchOptions.Format.CSV) {
      // CSV has no arrays: they go as JSON text.
      List<Column> columns = new ArrayList<>();
      for (StructField f : rows.schema().fields()) {
        Column c = functions.col(f.name());
        columns.add(f.dataType() instanceof ArrayType ? functions.to_json(c).as(f.name()) : c);
      }
      rows = rows.select(columns.toArray(new Column[0]));
    }
    var writer = rows.write().format(format.spark);
    if (format == BatchOptions.Format.CSV) {
      writer = writer.option("header", "true");
    }
    if (format == BatchOptions.Format.JSONL) {
      // Every line has every column, the null error included.
      writer = writer.option("ignoreNullFields", "false");
    }
    writer.save(io.output.toString());
  }

  /** The Kiln error inside Spark's wrapping (a failed task), so the exit code says what failed. */
  static RuntimeException kilnCause(Exception e) {
    for (Throwable t = e; t != null && t.getCause() != t; t = t.getCause()) {
      if (t instanceof KilnException k) {
        return k;
      }
    }
    return e instanceof RuntimeException r ? r : new KilnException(e.getMessage(), e);
  }

  /** Counts finished tasks on the progress bar. */
  private static final class TaskProgress extends SparkListener {
    private final ProgressBar progress;
    private final int tasks;
    private long done;

    TaskProgress(ProgressBar progress, int tasks) {
      this.progress = progress;
      this.tasks = tasks;
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      if (end.taskInfo().successful() && done < tasks) {
        done++;
        progress.step(done + " of " + tasks + " partitions");
      }
    }
  }
}
