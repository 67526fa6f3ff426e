package io.kiln;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every kind of bad input gets a typed exception naming the problem, never a crash. */
class BadInputTest {
  private static BertReference ref;
  private static Session bert;
  private static Session relu;

  @BeforeAll
  static void open() throws Exception {
    ref = BertReference.load();
    bert = Session.builder(ref.model()).device(Device.CPU).build();
    relu = Session.builder(TinyOnnx.relu(4)).device(Device.CPU).build();
  }

  @AfterAll
  static void close() {
    if (bert != null) {
      bert.close();
    }
    if (relu != null) {
      relu.close();
    }
  }

  @Test
  void missingModelFile(@TempDir Path dir) {
    ModelException e =
        assertThrows(
            ModelException.class, () -> Session.builder(dir.resolve("absent.onnx")).build());
    assertTrue(e.getMessage().contains("not found"), e.getMessage());
  }

  @Test
  void corruptModelFile(@TempDir Path dir) throws Exception {
    byte[] garbage = new byte[4096];
    new SplittableRandom(3).nextBytes(garbage);
    Path file = dir.resolve("corrupt.onnx");
    Files.write(file, garbage);
    ModelException e = assertThrows(ModelException.class, () -> Session.builder(file).build());
    assertTrue(e.getMessage().contains("cannot load"), e.getMessage());
    // A truncated real model is corrupt too.
    byte[] real = Files.readAllBytes(ref.model());
    Path truncated = dir.resolve("truncated.onnx");
    Files.write(truncated, java.util.Arrays.copyOf(real, real.length / 3));
    assertThrows(ModelException.class, () -> Session.builder(truncated).build());
    Path empty = dir.resolve("empty.onnx");
    Files.write(empty, new byte[0]);
    assertThrows(ModelException.class, () -> Session.builder(empty).build());
  }

  @Test
  void unknownInputName() {
    Map<String, Tensor> in = ref.batch();
    in.put("input_idz", Tensor.of(new long[] {1}, 1, 1));
    assertMessage(bert, in, "unknown input 'input_idz'");
  }

  @Test
  void missingInput() {
    Map<String, Tensor> in = ref.batch();
    in.remove("token_type_ids").close();
    assertMessage(bert, in, "missing input 'token_type_ids'");
  }

  @Test
  void wrongDtype() {
    Map<String, Tensor> in = ref.batch();
    in.put("input_ids", Tensor.of(new int[ref.rows() * ref.length()], ref.rows(), ref.length()))
        .close();
    assertMessage(bert, in, "'input_ids' must be int64, got int32");
  }

  @Test
  void wrongRank() {
    Map<String, Tensor> in = ref.batch();
    in.put("attention_mask", Tensor.of(new long[ref.length()], ref.length())).close();
    assertMessage(bert, in, "'attention_mask' must have rank 2");
  }

  @Test
  void wrongFixedDimension() {
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("x", Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
    assertMessage(relu, in, "axis 1 must be 4, got 3");
  }

  @Test
  void mismatchedBatchSizes() {
    Map<String, Tensor> in = ref.batch();
    long[] two = new long[2 * ref.length()];
    java.util.Arrays.fill(two, 1);
    in.put("attention_mask", Tensor.of(two, 2, ref.length())).close();
    assertMessage(bert, in, "mismatched batch sizes");
  }

  @Test
  void emptyBatches() {
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> bert.inferBatch(List.of()));
    assertTrue(e.getMessage().contains("empty batch"), e.getMessage());
    assertThrows(InvalidInputException.class, () -> bert.infer(Map.of()));
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("x", Tensor.allocate(DType.F32, 0, 4));
    assertMessage(relu, in, "is empty");
  }

  @Test
  void nonFiniteInputs() {
    for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
      Map<String, Tensor> in = new LinkedHashMap<>();
      in.put("x", Tensor.of(new float[] {0.5f, -1f, bad, 2f}, 1, 4));
      assertMessage(relu, in, "non-finite value (NaN or infinity) at index 2");
    }
  }

  @Test
  void badRequestInABatchIsNamed() {
    Map<String, Tensor> good = ref.row(0);
    Map<String, Tensor> bad = ref.row(1);
    bad.remove("input_ids").close();
    try {
      InvalidInputException e =
          assertThrows(InvalidInputException.class, () -> bert.inferBatch(List.of(good, bad)));
      assertTrue(e.getMessage().startsWith("request 1: missing input"), e.getMessage());
    } finally {
      good.values().forEach(Tensor::close);
      bad.values().forEach(Tensor::close);
    }
  }

  @Test
  void validInputsStillRunAfterRejections() {
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("x", Tensor.of(new float[] {0.5f, -1f, 3f, -2f}, 1, 4));
    try (Session.Result r = relu.infer(in)) {
      assertArrayEquals(new float[] {0.5f, 0f, 3f, 0f}, r.get("y").toFloatArray());
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  private static void assertMessage(Session s, Map<String, Tensor> in, String expected) {
    try {
      InvalidInputException e = assertThrows(InvalidInputException.class, () -> s.infer(in));
      assertTrue(e.getMessage().contains(expected), "message was: " + e.getMessage());
    } finally {
      in.values().forEach(Tensor::close);
    }
  }
}
