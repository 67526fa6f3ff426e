package io.kiln.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.Vectors;
import io.kiln.embedding.TextEmbedder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.SparkException;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KilnEmbedderTest {
  private static final StructType SCHEMA =
      DataTypes.createStructType(
          List.of(
              DataTypes.createStructField("id", DataTypes.IntegerType, false),
              DataTypes.createStructField("text", DataTypes.StringType, true)));

  static List<String> texts(int n) {
    String[] words =
        "the quick brown fox jumps over a lazy dog while kiln runs on spark".split(" ");
    List<String> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      StringBuilder sb = new StringBuilder();
      for (int w = 0; w < 3 + (i * 7) % 20; w++) {
        sb.append(w == 0 ? "" : " ").append(words[(i + w * 3) % words.length]);
      }
      out.add(sb + " " + i);
    }
    return out;
  }

  static Dataset<Row> frame(List<String> texts) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < texts.size(); i++) {
      rows.add(RowFactory.create(i, texts.get(i)));
    }
    return TestSpark.session().createDataFrame(rows, SCHEMA).repartition(2);
  }

  @Test
  void embeddingsEqualTheInProcessEmbedder() {
    List<String> texts = texts(60);
    float[][] expected;
    try (TextEmbedder embedder = TextEmbedder.defaultModel(b -> b)) {
      expected = embedder.embed(texts);
    }
    List<Row> rows = new KilnEmbedder().setBatchSize(8).transform(frame(texts)).collectAsList();
    assertEquals(texts.size(), rows.size());
    for (Row row : rows) {
      int id = row.getInt(row.fieldIndex("id"));
      assertEquals(texts.get(id), row.getString(row.fieldIndex("text")), "input columns kept");
      assertTrue(row.isNullAt(row.fieldIndex("error")));
      double cosine = Vectors.cosine(expected[id], TestSpark.floats(row, "embedding"));
      assertTrue(cosine >= 0.9999, "row " + id + ": cosine " + cosine);
    }
  }

  @Test
  void oneModelPerExecutorAcrossTasksAndJobs() {
    TestSpark.awaitIdle();
    KilnEmbedder embedder = new KilnEmbedder().setBatchSize(4);
    embedder.transform(frame(texts(20))).count();
    int opened = ExecutorModels.openedCount();
    // Two more jobs of two partitions each, four tasks: no model is opened again.
    embedder.transform(frame(texts(20))).count();
    embedder.transform(frame(texts(30))).count();
    assertEquals(opened, ExecutorModels.openedCount());
  }

  @Test
  void badRowsGetAnErrorAndTheJobCompletes() {
    List<String> texts = new ArrayList<>(texts(10));
    texts.set(2, null);
    texts.set(5, "");
    texts.set(7, "   ");
    List<Row> rows = new KilnEmbedder().setBatchSize(4).transform(frame(texts)).collectAsList();
    assertEquals(10, rows.size());
    for (Row row : rows) {
      int id = row.getInt(0);
      String error = row.getString(row.fieldIndex("error"));
      if (id == 2 || id == 5 || id == 7) {
        assertNotNull(error, "row " + id);
        assertTrue(error.startsWith("invalid input: "), error);
        assertTrue(row.isNullAt(row.fieldIndex("embedding")));
      } else {
        assertNull(error, "row " + id);
        assertEquals(384, TestSpark.floats(row, "embedding").length);
      }
    }
  }

  @Test
  void failFastFailsTheJobWithTheKilnError() {
    List<String> texts = new ArrayList<>(texts(6));
    texts.set(3, "");
    KilnEmbedder embedder = new KilnEmbedder().setFailFast(true);
    SparkException e =
        assertThrows(SparkException.class, () -> embedder.transform(frame(texts)).count());
    assertTrue(causes(e).stream().anyMatch(InvalidInputException.class::isInstance), e::toString);
  }

  @Test
  void savedAndReloadedPipelineGivesTheSameOutput(@TempDir Path dir) throws Exception {
    Dataset<Row> input = frame(texts(12));
    PipelineModel fitted =
        new Pipeline()
            .setStages(
                new PipelineStage[] {
                  new KilnEmbedder().setOutputCol("vector").setBatchSize(5).setDimensions(64)
                })
            .fit(input);
    String path = dir.resolve("pipeline").toString();
    fitted.write().overwrite().save(path);
    PipelineModel loaded = PipelineModel.load(path);
    KilnEmbedder stage = (KilnEmbedder) loaded.stages()[0];
    assertEquals(5, stage.getBatchSize());
    assertEquals(64, (int) stage.getOrDefault(stage.dimensions()));
    List<Row> before = fitted.transform(input).orderBy("id").collectAsList();
    List<Row> after = loaded.transform(input).orderBy("id").collectAsList();
    assertEquals(before.size(), after.size());
    for (int i = 0; i < before.size(); i++) {
      float[] a = TestSpark.floats(before.get(i), "vector");
      assertEquals(64, a.length);
      assertArrayEquals(a, TestSpark.floats(after.get(i), "vector"));
    }
    KilnEmbedder single = new KilnEmbedder().setPooling("cls").setNormalize(false);
    single.write().overwrite().save(dir.resolve("one").toString());
    KilnEmbedder back = KilnEmbedder.load(dir.resolve("one").toString());
    assertEquals("cls", back.getOrDefault(back.pooling()));
    assertEquals(false, back.getOrDefault(back.normalize()));
    assertEquals(single.uid(), back.uid());
  }

  static List<Throwable> causes(Throwable e) {
    List<Throwable> out = new ArrayList<>();
    for (Throwable t = e; t != null && !out.contains(t); t = t.getCause()) {
      out.add(t);
    }
    return Arrays.asList(out.toArray(new Throwable[0]));
  }
}
