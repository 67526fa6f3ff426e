package io.kiln.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BertReference;
import io.kiln.Tensor;
import io.kiln.session.Session;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KilnPredictorTest {
  private static final StructType SCHEMA =
      DataTypes.createStructType(
          List.of(
              DataTypes.createStructField("id", DataTypes.IntegerType, false),
              DataTypes.createStructField(
                  "ids", DataTypes.createArrayType(DataTypes.LongType), true),
              DataTypes.createStructField(
                  "mask", DataTypes.createArrayType(DataTypes.LongType), true),
              DataTypes.createStructField(
                  "types", DataTypes.createArrayType(DataTypes.LongType), true)));

  /** The reference rows, then random ones of other lengths. */
  private static List<long[][]> inputs(BertReference ref) {
    List<long[][]> rows = new ArrayList<>();
    for (int r = 0; r < ref.rows(); r++) {
      rows.add(new long[][] {ref.inputIds()[r], ref.attentionMask()[r], ref.tokenTypes()[r]});
    }
    Random random = new Random(7);
    for (int r = 0; r < 13; r++) {
      int n = 3 + random.nextInt(30);
      long[] ids = random.longs(n, 1, 900).toArray();
      long[] ones = new long[n];
      Arrays.fill(ones, 1);
      rows.add(new long[][] {ids, ones, new long[n]});
    }
    return rows;
  }

  private static List<Long> boxed(long[] values) {
    return Arrays.stream(values).boxed().toList();
  }

  private static KilnPredictor predictor(BertReference ref) {
    return new KilnPredictor()
        .setModelPath(ref.model().toString())
        .setInputCols("ids", "mask", "types")
        .setModelInputs("input_ids", "attention_mask", "token_type_ids")
        .setOutputNames("last_hidden_state")
        .setOutputCols("hidden")
        .setBatchSize(4);
  }

  @Test
  void outputsEqualTheSession() throws Exception {
    BertReference ref = BertReference.load();
    List<long[][]> inputs = inputs(ref);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < inputs.size(); i++) {
      long[][] in = inputs.get(i);
      rows.add(RowFactory.create(i, boxed(in[0]), boxed(in[1]), boxed(in[2])));
    }
    List<Row> out =
        predictor(ref)
            .transform(TestSpark.session().createDataFrame(rows, SCHEMA).repartition(2))
            .collectAsList();
    assertEquals(inputs.size(), out.size());
    try (Session session = Session.builder(ref.model()).build()) {
      for (Row row : out) {
        int id = row.getInt(0);
        assertNull(row.getString(row.fieldIndex("error")), "row " + id);
        long[][] in = inputs.get(id);
        int n = in[0].length;
        float[] expected;
        try (Tensor ids = Tensor.of(in[0], 1, n);
            Tensor mask = Tensor.of(in[1], 1, n);
            Tensor types = Tensor.of(in[2], 1, n);
            Session.Result r =
                session.infer(
                    Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types))) {
          expected = r.get("last_hidden_state").toFloatArray();
        }
        float[] actual = TestSpark.floats(row, "hidden");
        assertEquals(expected.length, actual.length, "row " + id);
        for (int k = 0; k < expected.length; k++) {
          assertEquals(expected[k], actual[k], 1e-4, "row " + id + " value " + k);
        }
        if (id < ref.rows()) {
          // The reference rows also match ONNX Runtime's own fp32 outputs.
          int width = n * BertReference.HIDDEN;
          for (int k = 0; k < width; k++) {
            assertEquals(ref.hidden()[id * width + k], actual[k], 1e-3, "reference row " + id);
          }
        }
      }
    }
  }

  @Test
  void inputsOfTheWrongShapeGetAnError() throws Exception {
    BertReference ref = BertReference.load();
    StructType nested =
        DataTypes.createStructType(
            List.of(
                DataTypes.createStructField("id", DataTypes.IntegerType, false),
                DataTypes.createStructField(
                    "ids",
                    DataTypes.createArrayType(DataTypes.createArrayType(DataTypes.LongType)),
                    true),
                DataTypes.createStructField(
                    "mask", DataTypes.createArrayType(DataTypes.LongType), true),
                DataTypes.createStructField(
                    "types", DataTypes.createArrayType(DataTypes.LongType), true)));
    List<Long> three = List.of(5L, 6L, 7L);
    List<Long> ones = List.of(1L, 1L, 1L);
    List<Long> zeros = List.of(0L, 0L, 0L);
    List<Row> rows =
        List.of(
            RowFactory.create(0, List.of(three), ones, zeros),
            RowFactory.create(1, List.of(three, three), ones, zeros),
            RowFactory.create(2, List.of(three), List.of(1L, 1L), zeros),
            RowFactory.create(3, List.of(three), null, zeros),
            RowFactory.create(4, List.of(List.of(5L, 100_000L, 7L)), ones, zeros));
    List<Row> out =
        predictor(ref)
            .transform(TestSpark.session().createDataFrame(rows, nested))
            .orderBy("id")
            .collectAsList();
    // [1, 1, 3] for a rank-2 input: every row has a rank the model refuses.
    for (Row row : out) {
      assertNotNull(row.getString(row.fieldIndex("error")), "row " + row.getInt(0));
      assertTrue(row.isNullAt(row.fieldIndex("hidden")));
    }
    String first = out.get(0).getString(out.get(0).fieldIndex("error"));
    assertTrue(first.contains("dims per row"), first);
  }

  @Test
  void badRowsAmongGoodOnesGetAnErrorAndTheRestRun() throws Exception {
    BertReference ref = BertReference.load();
    List<Row> rows = new ArrayList<>();
    List<Long> ids = List.of(11L, 12L, 13L, 14L);
    List<Long> ones = List.of(1L, 1L, 1L, 1L);
    List<Long> zeros = List.of(0L, 0L, 0L, 0L);
    rows.add(RowFactory.create(0, ids, ones, zeros));
    rows.add(RowFactory.create(1, ids, List.of(1L, 1L), zeros)); // mask shorter than ids
    rows.add(RowFactory.create(2, null, ones, zeros));
    rows.add(RowFactory.create(3, List.of(11L, 1_000_000L, 13L, 14L), ones, zeros)); // past vocab
    rows.add(RowFactory.create(4, ids, ones, zeros));
    List<Row> out =
        predictor(ref)
            .transform(TestSpark.session().createDataFrame(rows, SCHEMA).coalesce(1))
            .orderBy("id")
            .collectAsList();
    assertEquals(5, out.size());
    for (int i : new int[] {1, 2, 3}) {
      String error = out.get(i).getString(out.get(i).fieldIndex("error"));
      assertNotNull(error, "row " + i);
      assertTrue(error.startsWith("invalid input: "), error);
    }
    for (int i : new int[] {0, 4}) {
      assertNull(out.get(i).getString(out.get(i).fieldIndex("error")), "row " + i);
      assertEquals(4 * BertReference.HIDDEN, TestSpark.floats(out.get(i), "hidden").length);
    }
  }

  @Test
  void aSavedAndReloadedPredictorGivesTheSameOutput(@TempDir Path dir) throws Exception {
    BertReference ref = BertReference.load();
    List<Row> rows = new ArrayList<>();
    List<long[][]> inputs = inputs(ref);
    for (int i = 0; i < 6; i++) {
      long[][] in = inputs.get(i);
      rows.add(RowFactory.create(i, boxed(in[0]), boxed(in[1]), boxed(in[2])));
    }
    Dataset<Row> frame = TestSpark.session().createDataFrame(rows, SCHEMA);
    KilnPredictor original = predictor(ref).setPrecision("fp32");
    original.write().overwrite().save(dir.resolve("predictor").toString());
    KilnPredictor loaded = KilnPredictor.load(dir.resolve("predictor").toString());
    assertEquals(original.uid(), loaded.uid());
    assertEquals(4, loaded.getBatchSize());
    List<Row> before = original.transform(frame).orderBy("id").collectAsList();
    List<Row> after = loaded.transform(frame).orderBy("id").collectAsList();
    assertEquals(before.size(), after.size());
    for (int i = 0; i < before.size(); i++) {
      assertArrayEquals(
          TestSpark.floats(before.get(i), "hidden"), TestSpark.floats(after.get(i), "hidden"));
    }
  }
}
