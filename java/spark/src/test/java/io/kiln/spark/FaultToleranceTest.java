package io.kiln.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FaultToleranceTest {
  @Test
  void aTaskThatFailsMidPartitionIsRetriedAndEveryRowIsWrittenOnce(@TempDir Path dir) {
    int count = 48;
    AtomicInteger injected = new AtomicInteger();
    BatchedPartitions.testHook =
        rowsDone -> {
          TaskContext task = TaskContext.get();
          // The first attempt of partition 0 dies after its first batch went out.
          if (task.partitionId() == 0 && task.attemptNumber() == 0 && rowsDone > 0) {
            injected.incrementAndGet();
            throw new IllegalStateException("injected failure after " + rowsDone + " rows");
          }
        };
    String out = dir.resolve("out.parquet").toString();
    try {
      // Batch 1: calls of 16 rows, so each partition of about 24 takes two.
      new KilnEmbedder()
          .setBatchSize(1)
          .transform(KilnEmbedderTest.frame(KilnEmbedderTest.texts(count)))
          .write()
          .parquet(out);
    } finally {
      BatchedPartitions.testHook = null;
    }
    assertEquals(1, injected.get(), "the failure happened once");
    List<Row> rows = TestSpark.session().read().parquet(out).collectAsList();
    Map<Integer, Integer> seen = new TreeMap<>();
    for (Row row : rows) {
      seen.merge(row.getInt(row.fieldIndex("id")), 1, Integer::sum);
      assertTrue(row.isNullAt(row.fieldIndex("error")));
      assertEquals(384, TestSpark.floats(row, "embedding").length);
    }
    assertEquals(count, rows.size());
    for (int id = 0; id < count; id++) {
      assertEquals(1, seen.getOrDefault(id, 0), "row " + id);
    }
  }
}
