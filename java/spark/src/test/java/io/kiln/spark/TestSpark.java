package io.kiln.spark;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.apache.spark.SparkStatusTracker;
import org.apache.spark.sql.SparkSession;

/** One local Spark for all the tests of a JVM: starting Spark costs seconds. */
final class TestSpark {
  /** Two task slots, and each task may fail once and be retried (for the fault test). */
  static final String MASTER = "local[2,2]";

  private static SparkSession session;

  private TestSpark() {}

  static synchronized SparkSession session() {
    if (session == null) {
      session =
          SparkSession.builder()
              .master(MASTER)
              .appName("kiln-spark-tests")
              .config("spark.ui.enabled", "false")
              .config("spark.driver.host", "127.0.0.1")
              .config("spark.driver.bindAddress", "127.0.0.1")
              .config("spark.sql.shuffle.partitions", "2")
              .config("spark.plugins", KilnSparkPlugin.class.getName())
              .getOrCreate();
    }
    return session;
  }

  /**
   * Waits until no task runs. A failed job's other tasks are killed asynchronously, and one may
   * still be opening its model after the job has failed; a test that counts the models opened must
   * not see that one.
   */
  static void awaitIdle() {
    SparkStatusTracker tracker = session().sparkContext().statusTracker();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (tracker.getActiveStageIds().length > 0
        || Arrays.stream(tracker.getExecutorInfos())
            .anyMatch(executor -> executor.numRunningTasks() > 0)) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("Spark still runs tasks after 60 s");
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  /** An {@code array<float>} cell as a Java array. */
  static float[] floats(org.apache.spark.sql.Row row, String column) {
    java.util.List<Float> values = row.getList(row.fieldIndex(column));
    float[] out = new float[values.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = values.get(i);
    }
    return out;
  }
}
