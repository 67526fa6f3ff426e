package io.kiln.embedding;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.Device;
import io.kiln.Tensor;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.OnnxGraphBuilder;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The graph's own pooling against {@link Pooling#pool} on the host, over a toy encoder whose token
 * states are rows of a random table: every mode, with and without an excluded prompt, at the opsets
 * where ReduceSum and ReduceMax take their axes as an attribute or as an input.
 */
class PooledGraphTest {
  private static final int VOCAB = 50;
  private static final int HIDDEN = 6;
  private static final int[] LENGTHS = {7, 3, 5, 4};
  private static final int SEQUENCE = 7;

  @TempDir Path dir;

  @ParameterizedTest(name = "{0} prefix={1} opset={2}")
  @CsvSource({
    "CLS, 0, 13",
    "MEAN, 0, 13",
    "MEAN, 2, 13",
    "MEAN, 2, 11",
    "MAX, 0, 13",
    "MAX, 2, 18",
    "MAX, 0, 11",
    "MEAN_SQRT_LEN, 0, 13",
    "MEAN_SQRT_LEN, 2, 18",
    "LAST_TOKEN, 0, 13",
    "LAST_TOKEN, 2, 11",
  })
  void poolsAsTheHostDoes(Pooling pooling, int prefix, int opset) throws Exception {
    SplittableRandom rnd = new SplittableRandom(31L * pooling.ordinal() + 7L * prefix + opset);
    ModelSource encoder = toyEncoder(opset, rnd);
    ModelSource pooled = PooledGraph.append(encoder, new PooledGraph.Request(pooling, prefix));
    assertNotNull(pooled, "opset " + opset + " pools in the graph");

    long[] ids = new long[LENGTHS.length * SEQUENCE];
    long[] mask = new long[ids.length];
    for (int r = 0; r < LENGTHS.length; r++) {
      for (int s = 0; s < LENGTHS[r]; s++) {
        ids[r * SEQUENCE + s] = 1 + rnd.nextInt(VOCAB - 1);
        mask[r * SEQUENCE + s] = 1;
      }
    }
    float[] states = run(encoder, "last_hidden_state", ids, mask);
    float[] got = run(pooled, PooledGraph.OUTPUT, ids, mask);
    assertEquals(LENGTHS.length * HIDDEN, got.length);
    for (int r = 0; r < LENGTHS.length; r++) {
      long[] rowMask = Arrays.copyOfRange(mask, r * SEQUENCE, (r + 1) * SEQUENCE);
      Arrays.fill(rowMask, 0, prefix, 0);
      float[] expected = pooling.pool(states, r, SEQUENCE, HIDDEN, rowMask);
      float[] row = Arrays.copyOfRange(got, r * HIDDEN, (r + 1) * HIDDEN);
      assertArrayEquals(expected, row, 1e-5f, pooling + " row " + r);
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {9, 10})
  void oldOpsetsLeaveThePoolingToTheHost(int opset) throws Exception {
    assertNull(
        PooledGraph.append(
            toyEncoder(opset, new SplittableRandom(1)), new PooledGraph.Request(Pooling.MEAN, 0)));
  }

  /** Runs one model on ONNX Runtime and returns {@code output}. */
  private static float[] run(ModelSource model, String output, long[] ids, long[] mask) {
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("input_ids", Tensor.of(ids, LENGTHS.length, SEQUENCE));
    in.put("attention_mask", Tensor.of(mask, LENGTHS.length, SEQUENCE));
    try (Session session = Session.builder(model).device(Device.CPU).build();
        Session.Result result = session.infer(in)) {
      assertTrue(session.outputs().stream().anyMatch(o -> o.name().equals(output)));
      return result.get(output).toFloatArray();
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  /**
   * input_ids, attention_mask [batch, sequence] int64 to last_hidden_state [batch, sequence,
   * HIDDEN]: each token's row of a random table, times a factor of 1 made from the mask so that the
   * mask stays an input.
   */
  private ModelSource toyEncoder(int opset, SplittableRandom rnd) throws Exception {
    float[] table = new float[VOCAB * HIDDEN];
    for (int i = 0; i < table.length; i++) {
      table[i] = (float) (rnd.nextDouble() * 4 - 2);
    }
    Path file = dir.resolve("toy-" + opset + "-" + rnd.nextInt(1 << 20) + ".onnx");
    try (OnnxGraphBuilder g = new OnnxGraphBuilder("toy", opset, null)) {
      g.input("input_ids", OnnxGraphBuilder.INT64, "batch", "sequence");
      g.input("attention_mask", OnnxGraphBuilder.INT64, "batch", "sequence");
      String states = g.op("Gather", g.floats("table", table, VOCAB, HIDDEN), "input_ids");
      String mask = g.op("Cast", new String[] {"attention_mask"}, "to", 1L);
      String one =
          g.op(
              "Add",
              g.op("Mul", mask, g.floats("zero", new float[] {0f})),
              g.floats("one", new float[] {1f}));
      String column = g.op("Reshape", one, g.ints("column", new long[] {0, -1, 1}, 3));
      g.node("Mul", new String[] {states, column}, new String[] {"last_hidden_state"});
      g.output("last_hidden_state", OnnxGraphBuilder.FLOAT, "batch", "sequence", (long) HIDDEN);
      g.write(file, "kiln-test");
    }
    return ModelSource.of("toy opset " + opset, Files.readAllBytes(file));
  }
}
