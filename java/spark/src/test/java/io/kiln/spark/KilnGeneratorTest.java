package io.kiln.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.SharedModels;
import io.kiln.model.llama.PublicLlama;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KilnGeneratorTest {
  private static final StructType IDS =
      DataTypes.createStructType(
          List.of(
              DataTypes.createStructField("id", DataTypes.IntegerType, false),
              DataTypes.createStructField(
                  "prompt", DataTypes.createArrayType(DataTypes.IntegerType), true)));

  private static List<Integer> boxed(int[] values) {
    return Arrays.stream(values).boxed().toList();
  }

  private static int[] ints(Row row, String column) {
    return row.<Integer>getList(row.fieldIndex(column)).stream()
        .mapToInt(Integer::intValue)
        .toArray();
  }

  @Test
  void greedyTokensEqualTheReference() {
    Path dir = PublicLlama.directory();
    List<PublicLlama.Case> cases = PublicLlama.cases();
    List<Row> rows = new ArrayList<>();
    // Each case twice, so that both partitions carry every prompt length.
    for (int i = 0; i < 2 * cases.size(); i++) {
      rows.add(RowFactory.create(i, boxed(cases.get(i % cases.size()).prompt())));
    }
    List<Row> out =
        new KilnGenerator()
            .setModelPath(dir.toString())
            .setMaxNewTokens(48)
            .setThreads(1)
            .setBatchSize(3)
            .transform(TestSpark.session().createDataFrame(rows, IDS).repartition(2))
            .collectAsList();
    assertEquals(rows.size(), out.size());
    for (Row row : out) {
      int id = row.getInt(0);
      assertNull(row.getString(row.fieldIndex("error")), "row " + id);
      assertArrayEquals(
          cases.get(id % cases.size()).greedyNewTokens(), ints(row, "generated_ids"), "row " + id);
      assertTrue(row.isNullAt(row.fieldIndex("generated_text")), "no tokenizer, no text");
    }
  }

  @Test
  void textPromptsAndBadRows() {
    Path dir = SharedModels.require("public/llama-chat");
    StructType text =
        DataTypes.createStructType(
            List.of(
                DataTypes.createStructField("id", DataTypes.IntegerType, false),
                DataTypes.createStructField("prompt", DataTypes.StringType, true)));
    String tooLong = "word ".repeat(3000);
    List<Row> rows =
        List.of(
            RowFactory.create(0, "Hello there"),
            RowFactory.create(1, null),
            RowFactory.create(2, ""),
            RowFactory.create(3, tooLong),
            RowFactory.create(4, "The sky is"));
    List<Row> out =
        new KilnGenerator()
            .setModelPath(dir.toString())
            .setMaxNewTokens(5)
            .setIgnoreEos(true)
            .setThreads(1)
            .transform(TestSpark.session().createDataFrame(rows, text))
            .orderBy("id")
            .collectAsList();
    for (int i : new int[] {0, 4}) {
      Row row = out.get(i);
      assertNull(row.getString(row.fieldIndex("error")), "row " + i);
      assertEquals(5, ints(row, "generated_ids").length);
      assertNotNull(row.getString(row.fieldIndex("generated_text")));
    }
    for (int i : new int[] {1, 2, 3}) {
      String error = out.get(i).getString(out.get(i).fieldIndex("error"));
      assertNotNull(error, "row " + i);
      assertTrue(error.startsWith("invalid input: "), error);
    }
    String tooLongError = out.get(3).getString(out.get(3).fieldIndex("error"));
    assertTrue(tooLongError.contains("longer than"), tooLongError);
  }

  @Test
  void aSavedAndReloadedGeneratorGivesTheSameTokens(@TempDir Path tmp) throws Exception {
    Path dir = PublicLlama.directory();
    List<PublicLlama.Case> cases = PublicLlama.cases();
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      rows.add(RowFactory.create(i, boxed(cases.get(i).prompt())));
    }
    KilnGenerator original =
        new KilnGenerator()
            .setModelPath(dir.toString())
            .setMaxNewTokens(12)
            .setThreads(1)
            .setBatchSize(2)
            .setIdsCol("ids");
    original.write().overwrite().save(tmp.resolve("generator").toString());
    KilnGenerator loaded = KilnGenerator.load(tmp.resolve("generator").toString());
    assertEquals(12, (int) loaded.getOrDefault(loaded.maxNewTokens()));
    List<Row> out =
        loaded.transform(TestSpark.session().createDataFrame(rows, IDS)).collectAsList();
    assertEquals(rows.size(), out.size());
    for (Row row : out) {
      int id = row.getInt(0);
      assertArrayEquals(
          Arrays.copyOf(cases.get(id).greedyNewTokens(), 12), ints(row, "ids"), "row " + id);
    }
  }
}
