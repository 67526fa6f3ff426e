package io.kiln.badinput;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BertReference;
import io.kiln.DType;
import io.kiln.Device;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.Tensor;
import io.kiln.model.TensorJson;
import io.kiln.session.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * Random malformed input never crashes, never passes as a result, and always gets a typed error:
 * tensors of any dtype, shape and value into a session, tensor files of random JSON, and random
 * session options.
 */
class BadInputPropertyTest {
  private static BertReference ref;
  private static Session bert;

  @BeforeContainer
  static void open() throws Exception {
    ref = BertReference.load();
    bert = Session.builder(ref.model()).device(Device.CPU).intraOpThreads(1).build();
  }

  @AfterContainer
  static void close() {
    if (bert != null) {
      bert.close();
    }
  }

  /** One input of the three, as the property draws it. */
  record Drawn(DType dtype, long[] shape, long value) {}

  @Provide
  Arbitrary<Drawn> inputs() {
    Arbitrary<DType> dtypes = Arbitraries.of(DType.I64, DType.I64, DType.I64, DType.I32, DType.F32);
    Arbitrary<long[]> shapes =
        Arbitraries.longs()
            .between(0, 600)
            .list()
            .ofMinSize(1)
            .ofMaxSize(3)
            .map(l -> l.stream().mapToLong(Long::longValue).toArray())
            .filter(s -> product(s) <= 40_000);
    Arbitrary<Long> values =
        Arbitraries.oneOf(
            Arbitraries.longs().between(-3, 3),
            Arbitraries.longs().between(0, 40_000),
            Arbitraries.of(Long.MIN_VALUE, Long.MAX_VALUE, -1L, 511L, 512L, 513L));
    return net.jqwik.api.Combinators.combine(dtypes, shapes, values).as(Drawn::new);
  }

  @Property(tries = 150)
  void sessionsTakeOnlyWhatTheModelAccepts(
      @ForAll("inputs") Drawn ids, @ForAll("inputs") Drawn mask, @ForAll("inputs") Drawn types) {
    Map<String, Tensor> feed = new LinkedHashMap<>();
    try {
      feed.put("input_ids", tensor(ids));
      feed.put("attention_mask", tensor(mask));
      feed.put("token_type_ids", tensor(types));
    } catch (InvalidInputException e) {
      feed.values().forEach(Tensor::close);
      return; // refused while building the tensor: typed
    }
    try (Session.Result result = bert.infer(feed)) {
      // Accepted: then it was valid, and the answer is a real one.
      long[] shape = ids.shape();
      assertArrayEquals(
          new long[] {shape[0], shape[1], BertReference.HIDDEN},
          result.get("last_hidden_state").shape());
      for (float v : result.get("last_hidden_state").toFloatArray()) {
        assertTrue(Float.isFinite(v), "a non-finite output from accepted input");
      }
      assertTrue(ids.value() >= 0 && types.value() >= 0 && types.value() < 2, "accepted " + ids);
    } catch (KilnException e) {
      assertTrue(e instanceof InvalidInputException, "not typed as bad input: " + e);
      assertTrue(!e.getMessage().contains("\n"), "not one line: " + e.getMessage());
    } finally {
      feed.values().forEach(Tensor::close);
    }
  }

  @Property(tries = 200)
  void tensorFilesOfRandomJsonAreReadOrRefused(@ForAll("jsonDocuments") String text)
      throws Exception {
    Path file = Files.createTempFile("kiln-property", ".json");
    try {
      Files.writeString(file, text);
      TensorJson.read(file).values().forEach(Tensor::close);
    } catch (KilnException e) {
      assertTrue(e instanceof InvalidInputException, "not typed as bad input: " + e);
      assertTrue(!e.getMessage().contains("\n"), "not one line: " + e.getMessage());
    } finally {
      Files.deleteIfExists(file);
    }
  }

  @Provide
  Arbitrary<String> jsonDocuments() {
    Arbitrary<String> numbers =
        Arbitraries.oneOf(
            Arbitraries.longs().map(Object::toString),
            Arbitraries.doubles().map(Object::toString),
            Arbitraries.of("1e400", "-0", "9223372036854775808", "NaN", "\"inf\"", "null", "true"));
    Arbitrary<String> arrays =
        numbers.list().ofMaxSize(6).map(l -> "[" + String.join(",", l) + "]");
    Arbitrary<String> dtypes =
        Arbitraries.of("int64", "int32", "float32", "float16", "bool", "int8", "uint8", "x", "");
    Arbitrary<String> tensor =
        net.jqwik.api.Combinators.combine(dtypes, arrays, arrays)
            .as(
                (dtype, shape, data) ->
                    "{\"t\":{\"dtype\":\""
                        + dtype
                        + "\",\"shape\":"
                        + shape
                        + ",\"data\":"
                        + data
                        + "}}");
    Arbitrary<String> broken =
        tensor.map(s -> s.substring(0, Math.max(0, s.length() / 2))); // cut mid-document
    return Arbitraries.oneOf(tensor, tensor, broken, Arbitraries.strings().ofMaxLength(40));
  }

  @Property(tries = 200)
  void sessionOptionsAreCheckedWhenSet(
      @ForAll("anyInt") int batch, @ForAll("anyInt") int threads, @ForAll long waitMicros) {
    Session.Builder builder = Session.builder(ref.model()).device(Device.CPU);
    for (Runnable set :
        List.<Runnable>of(
            () -> builder.maxBatchSize(batch),
            () -> builder.intraOpThreads(threads),
            () -> builder.maxWaitMicros(waitMicros),
            () -> builder.sequenceBucket(batch))) {
      try {
        set.run();
      } catch (InvalidInputException e) {
        assertTrue(!e.getMessage().contains("\n"), "not one line: " + e.getMessage());
      }
    }
  }

  @Provide
  Arbitrary<Integer> anyInt() {
    return Arbitraries.oneOf(
        Arbitraries.integers(), Arbitraries.of(0, -1, 1, Integer.MAX_VALUE, Integer.MIN_VALUE));
  }

  private static Tensor tensor(Drawn d) {
    long n = product(d.shape());
    return switch (d.dtype()) {
      case I64 -> {
        long[] v = new long[(int) n];
        java.util.Arrays.fill(v, d.value());
        yield Tensor.of(v, d.shape());
      }
      case I32 -> {
        int[] v = new int[(int) n];
        java.util.Arrays.fill(v, (int) d.value());
        yield Tensor.of(v, d.shape());
      }
      default -> {
        float[] v = new float[(int) n];
        java.util.Arrays.fill(v, d.value());
        yield Tensor.of(v, d.shape());
      }
    };
  }

  private static long product(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }
}
