package io.kiln.badinput;

import io.kiln.Backend;
import io.kiln.BertReference;
import io.kiln.ClosedException;
import io.kiln.DType;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.TinyOnnx;
import io.kiln.model.Npy;
import io.kiln.model.TensorJson;
import io.kiln.session.Session;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library's part of the bad-input suite: each case must raise its typed exception with a
 * one-line message that names the problem, before any native call sees the data.
 */
class LibraryBadInputTest {
  private static BertReference ref;
  private static Session bert;
  private static long vocabulary;
  @TempDir static Path dir;

  @BeforeAll
  static void open() throws Exception {
    ref = BertReference.load();
    bert = Session.builder(ref.model()).device(Device.CPU).build();
    vocabulary =
        io.kiln.model.onnx.TensorProtos.dims(
            io.kiln.model.onnx.OnnxModel.load(ref.model())
                .initializers()
                .get("b.embeddings.word_embeddings.weight"))[0];
  }

  @AfterAll
  static void close() {
    if (bert != null) {
      bert.close();
    }
  }

  @TestFactory
  Stream<DynamicTest> everyCaseIsTypedAndOneLine() {
    return BadInputCase.tests(cases());
  }

  private static List<BadInputCase> cases() {
    List<BadInputCase> cases = new ArrayList<>();
    // Token ids and sequences against the tables the model itself holds.
    cases.add(
        new BadInputCase(
            "id past the vocabulary",
            InvalidInputException.class,
            "rows 0 to " + (vocabulary - 1),
            () -> bertWith(vocabulary, 0, 8)));
    cases.add(
        new BadInputCase(
            "negative id", InvalidInputException.class, "has -1", () -> bertWith(-1, 0, 8)));
    cases.add(
        new BadInputCase(
            "token type past its table",
            InvalidInputException.class,
            "'token_type_ids' has 2",
            () -> bertWith(101, 2, 8)));
    cases.add(
        new BadInputCase(
            "sequence past the position table",
            InvalidInputException.class,
            "position table",
            () -> bertWith(101, 0, 513)));
    cases.add(
        new BadInputCase(
            "id of Long.MIN_VALUE",
            InvalidInputException.class,
            "rows 0 to",
            () -> bertWith(Long.MIN_VALUE, 0, 4)));
    // Tensor files.
    cases.add(
        new BadInputCase(
            "JSON integer past int64",
            InvalidInputException.class,
            "outside int64",
            () ->
                json(
                    "{\"x\":{\"dtype\":\"int64\",\"shape\":[1],\"data\":[9223372036854775808]}}")));
    cases.add(
        new BadInputCase(
            "JSON negative shape",
            InvalidInputException.class,
            "non-negative integers",
            () -> json("{\"x\":{\"dtype\":\"int64\",\"shape\":[-1],\"data\":[1]}}")));
    cases.add(
        new BadInputCase(
            "JSON fractional shape",
            InvalidInputException.class,
            "non-negative integers",
            () -> json("{\"x\":{\"dtype\":\"int64\",\"shape\":[1.5],\"data\":[1]}}")));
    cases.add(
        new BadInputCase(
            "JSON huge shape",
            InvalidInputException.class,
            "non-negative integers",
            () -> json("{\"x\":{\"dtype\":\"float32\",\"shape\":[1e30],\"data\":[1]}}")));
    cases.add(
        new BadInputCase(
            "JSON fraction in integer data",
            InvalidInputException.class,
            "needs integers",
            () -> json("{\"x\":{\"dtype\":\"int64\",\"shape\":[1],\"data\":[1.5]}}")));
    cases.add(
        new BadInputCase(
            "JSON text in float data",
            InvalidInputException.class,
            "non-numeric",
            () -> json("{\"x\":{\"dtype\":\"float32\",\"shape\":[1],\"data\":[\"one\"]}}")));
    cases.add(
        new BadInputCase(
            "JSON unknown dtype",
            InvalidInputException.class,
            "float64",
            () -> json("{\"x\":{\"dtype\":\"float64\",\"shape\":[1],\"data\":[1]}}")));
    cases.add(
        new BadInputCase(
            "JSON without data",
            InvalidInputException.class,
            "\"data\"",
            () -> json("{\"x\":{\"dtype\":\"int64\",\"shape\":[1]}}")));
    cases.add(
        new BadInputCase(
            "JSON data that does not fill the shape",
            InvalidInputException.class,
            "do not fill shape",
            () -> json("{\"x\":{\"dtype\":\"int64\",\"shape\":[2,2],\"data\":[1,2,3]}}")));
    cases.add(
        new BadInputCase(
            "JSON int32 past its range",
            InvalidInputException.class,
            "out of range",
            () -> json("{\"x\":{\"dtype\":\"int32\",\"shape\":[1],\"data\":[4294967296]}}")));
    cases.add(
        new BadInputCase(
            "JSON that is not JSON", InvalidInputException.class, "", () -> json("{\"x\": [1, 2")));
    cases.add(
        new BadInputCase(
            "npy of an unsupported dtype",
            InvalidInputException.class,
            "<u8",
            () -> npy("{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", 8)));
    cases.add(
        new BadInputCase(
            "npy in Fortran order",
            InvalidInputException.class,
            "ortran",
            () -> npy("{'descr': '<i8', 'fortran_order': True, 'shape': (1,), }", 8)));
    cases.add(
        new BadInputCase(
            "npy cut short",
            InvalidInputException.class,
            "",
            () -> npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", 8)));
    cases.add(
        new BadInputCase(
            "npy without its magic",
            InvalidInputException.class,
            "",
            () -> {
              Path f = dir.resolve("nomagic.npy");
              Files.write(f, "not an npy file at all".getBytes(StandardCharsets.US_ASCII));
              Npy.read(f);
            }));
    // Tensors.
    cases.add(
        new BadInputCase(
            "negative dimension",
            InvalidInputException.class,
            "negative dimension",
            () -> Tensor.of(new long[] {1}, -1)));
    cases.add(
        new BadInputCase(
            "values that do not fill the shape",
            InvalidInputException.class,
            "do not fill shape",
            () -> Tensor.of(new float[] {1, 2, 3}, 2, 2)));
    // Session options.
    cases.add(
        new BadInputCase(
            "maxBatchSize 0",
            InvalidInputException.class,
            "maxBatchSize",
            () -> Session.builder(ref.model()).maxBatchSize(0)));
    cases.add(
        new BadInputCase(
            "batchSize past maxBatchSize",
            InvalidInputException.class,
            "exceeds maxBatchSize",
            () -> Session.builder(ref.model()).maxBatchSize(2).batchSize(4).build()));
    cases.add(
        new BadInputCase(
            "negative maxWaitMicros",
            InvalidInputException.class,
            "maxWaitMicros",
            () -> Session.builder(ref.model()).maxWaitMicros(-1)));
    cases.add(
        new BadInputCase(
            "intraOpThreads 0",
            InvalidInputException.class,
            "intraOpThreads",
            () -> Session.builder(ref.model()).intraOpThreads(0)));
    cases.add(
        new BadInputCase(
            "sequenceBucket 0",
            InvalidInputException.class,
            "sequenceBucket",
            () -> Session.builder(ref.model()).sequenceBucket(0)));
    cases.add(
        new BadInputCase(
            "unknown precision",
            InvalidInputException.class,
            "fp64",
            () -> Precision.parse("fp64")));
    cases.add(
        new BadInputCase(
            "unknown device", InvalidInputException.class, "tpu", () -> Device.parse("tpu")));
    cases.add(
        new BadInputCase(
            "unknown backend",
            InvalidInputException.class,
            "openvino",
            () -> Backend.parse("openvino")));
    cases.add(
        new BadInputCase(
            "a KV-cache decoder that is not one",
            ModelException.class,
            "past_key_values",
            () -> Session.builder(ref.model()).device(Device.CPU).kvCache(true).build()));
    cases.add(
        new BadInputCase(
            "an ONNX file of random bytes",
            ModelException.class,
            "",
            () -> Session.builder(new byte[] {8, 1, 18, 3, 1, 2}).device(Device.CPU).build()));
    // Calls.
    cases.add(
        new BadInputCase(
            "empty inferBatch",
            InvalidInputException.class,
            "empty batch",
            () -> bert.inferBatch(List.of())));
    cases.add(
        new BadInputCase(
            "benchmark with no iterations",
            InvalidInputException.class,
            "iterations",
            () -> withRow(in -> bert.benchmark(in, 0, 0, Duration.ofSeconds(1)))));
    cases.add(
        new BadInputCase(
            "a float where ids belong",
            InvalidInputException.class,
            "must be int64",
            () -> {
              Map<String, Tensor> in = ref.row(0);
              in.put("input_ids", Tensor.of(new float[] {1, 2}, 1, 2));
              try (Session.Result r = bert.infer(in)) {
                r.first();
              } finally {
                in.values().forEach(Tensor::close);
              }
            }));
    cases.add(
        new BadInputCase(
            "a closed input tensor",
            InvalidInputException.class,
            "closed",
            () -> {
              Map<String, Tensor> in = ref.row(0);
              in.get("input_ids").close();
              try (Session.Result r = bert.infer(in)) {
                r.first();
              } finally {
                in.values().forEach(Tensor::close);
              }
            }));
    cases.add(
        new BadInputCase(
            "a call on a closed session",
            ClosedException.class,
            "closed",
            () -> {
              Session relu = Session.builder(TinyOnnx.relu(4)).device(Device.CPU).build();
              relu.close();
              try (Tensor x = Tensor.of(new float[] {1, 2, 3, 4}, 1, 4)) {
                relu.infer(Map.of("x", x));
              }
            }));
    cases.add(
        new BadInputCase(
            "an output name the model lacks",
            InvalidInputException.class,
            "no output named",
            () ->
                withRow(
                    in -> {
                      try (Session.Result r = bert.infer(in)) {
                        r.get("logits");
                      }
                    })));
    cases.add(
        new BadInputCase(
            "an allocation whose size overflows",
            InvalidInputException.class,
            "",
            () -> Tensor.allocate(DType.F32, Long.MAX_VALUE / 2, 4)));
    return cases;
  }

  private interface RowCall {
    void run(Map<String, Tensor> inputs) throws Throwable;
  }

  private static void withRow(RowCall call) throws Throwable {
    Map<String, Tensor> in = ref.row(0);
    try {
      call.run(in);
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  /** BERT on one row of {@code length} tokens, each {@code id}, all of token type {@code type}. */
  private static void bertWith(long id, long type, int length) {
    long[] ids = new long[length];
    long[] mask = new long[length];
    long[] types = new long[length];
    java.util.Arrays.fill(ids, id);
    java.util.Arrays.fill(mask, 1);
    java.util.Arrays.fill(types, type);
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("input_ids", Tensor.of(ids, 1, length));
    in.put("attention_mask", Tensor.of(mask, 1, length));
    in.put("token_type_ids", Tensor.of(types, 1, length));
    try (Session.Result r = bert.infer(in)) {
      r.first();
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  private static void json(String text) throws Exception {
    Path f = Files.createTempFile(dir, "in", ".json");
    Files.writeString(f, text);
    TensorJson.read(f).values().forEach(Tensor::close);
  }

  /** An .npy file with {@code header} and {@code dataBytes} bytes of data. */
  private static void npy(String header, int dataBytes) throws Exception {
    StringBuilder h = new StringBuilder(header);
    while ((10 + h.length() + 1) % 64 != 0) {
      h.append(' ');
    }
    h.append('\n');
    byte[] head = h.toString().getBytes(StandardCharsets.US_ASCII);
    byte[] out = new byte[10 + head.length + dataBytes];
    out[0] = (byte) 0x93;
    System.arraycopy("NUMPY".getBytes(StandardCharsets.US_ASCII), 0, out, 1, 5);
    out[6] = 1;
    out[7] = 0;
    out[8] = (byte) (head.length & 0xff);
    out[9] = (byte) (head.length >> 8);
    System.arraycopy(head, 0, out, 10, head.length);
    Path f = Files.createTempFile(dir, "in", ".npy");
    Files.write(f, out);
    Npy.read(f).close();
  }
}
