package io.kiln.spark;

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
