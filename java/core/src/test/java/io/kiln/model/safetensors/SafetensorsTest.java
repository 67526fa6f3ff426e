package io.kiln.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.DType;
import io.kiln.Float16;
import io.kiln.ModelException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
  @TempDir Path dir;

  private static float[] random(int n, long seed) {
    Random r = new Random(seed);
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) r.nextGaussian() * 3;
    }
    return v;
  }

  @Test
  void writesAndReadsEachFloatType() {
    float[] values = random(6 * 7, 1);
    for (DType dtype : List.of(DType.F32, DType.F16, DType.BF16)) {
      Path file = dir.resolve(dtype + ".safetensors");
      SafetensorsWriter.writeAll(file, Map.of("w", values), Map.of("w", new long[] {6, 7}), dtype);
      try (SafetensorsFile f = SafetensorsFile.open(file)) {
        SafetensorsTensor t = f.tensors().get("w");
        assertEquals(dtype, t.dtype());
        assertArrayEquals(new long[] {6, 7}, t.shape());
        assertEquals("pt", f.metadata().get("format"));
        float[] back = f.readFloats("w");
        for (int i = 0; i < values.length; i++) {
          float expected =
              dtype == DType.F32
                  ? values[i]
                  : dtype == DType.F16
                      ? Float16.halfToFloat(Float16.floatToHalf(values[i]))
                      : Float16.bf16ToFloat(Float16.floatToBf16(values[i]));
          assertEquals(expected, back[i], 0f, dtype + " element " + i);
        }
      }
    }
  }

  @Test
  void headerIsAlignedAndFollowsTheSpec() throws IOException {
    Path file = dir.resolve("a.safetensors");
    Map<String, float[]> tensors = new LinkedHashMap<>();
    tensors.put("a", new float[] {1, 2, 3});
    tensors.put("b", new float[] {4});
    SafetensorsWriter.writeAll(
        file, tensors, Map.of("a", new long[] {3}, "b", new long[] {1}), DType.F32);
    byte[] bytes = Files.readAllBytes(file);
    long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
    assertEquals(0, (8 + headerLength) % 8);
    String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
    assertTrue(
        header.contains("\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"), header);
    assertTrue(
        header.contains("\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}"),
        header);
    assertEquals(8 + headerLength + 16, bytes.length);
    assertEquals(
        4f, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getFloat(bytes.length - 4));
  }

  @Test
  void readsShardsThroughTheIndex() throws IOException {
    float[] a = random(10, 2);
    float[] b = random(20, 3);
    SafetensorsWriter.writeAll(
        dir.resolve("model-00001-of-00002.safetensors"),
        Map.of("x.a", a),
        Map.of("x.a", new long[] {10}),
        DType.F32);
    SafetensorsWriter.writeAll(
        dir.resolve("model-00002-of-00002.safetensors"),
        Map.of("x.b", b),
        Map.of("x.b", new long[] {4, 5}),
        DType.BF16);
    Files.writeString(
        dir.resolve(SafetensorsModel.INDEX_FILE),
        "{\"metadata\":{\"total_size\":80},\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\",\"x.b\":\"model-00002-of-00002.safetensors\"}}");
    try (SafetensorsModel m = SafetensorsModel.open(dir)) {
      assertEquals(2, m.names().size());
      assertArrayEquals(a, m.readFloats("x.a", 10));
      assertEquals(Float16.bf16ToFloat(Float16.floatToBf16(b[7])), m.readFloats("x.b", 4, 5)[7]);
      ModelException shape = assertThrows(ModelException.class, () -> m.readFloats("x.b", 20));
      assertTrue(shape.getMessage().contains("x.b"), shape.getMessage());
    }
  }

  @Test
  void missingTensorIsNamed() {
    SafetensorsWriter.writeAll(
        dir.resolve("model.safetensors"),
        Map.of("present", new float[] {1}),
        Map.of("present", new long[] {1}),
        DType.F32);
    try (SafetensorsModel m = SafetensorsModel.open(dir)) {
      ModelException e =
          assertThrows(ModelException.class, () -> m.readFloats("model.norm.weight", 1));
      assertTrue(e.getMessage().contains("missing tensor 'model.norm.weight'"), e.getMessage());
    }
  }

  private Path withHeader(String json, int dataBytes) throws IOException {
    byte[] h = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    Path file = dir.resolve("bad.safetensors");
    Files.write(file, b.array());
    return file;
  }

  private void assertCorrupt(Path file, String fragment) {
    ModelException e = assertThrows(ModelException.class, () -> SafetensorsFile.open(file).close());
    assertTrue(e.getMessage().contains("corrupt safetensors header"), e.getMessage());
    assertTrue(e.getMessage().contains(fragment), e.getMessage());
  }

  @Test
  void corruptHeadersAreTypedErrors() throws IOException {
    assertCorrupt(withHeader("{\"w\": {\"dtype\": \"F32\", ", 0), "not valid JSON");
    assertCorrupt(withHeader("[1, 2]", 0), "not a JSON object");
    assertCorrupt(
        withHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4),
        "outside");
    assertCorrupt(
        withHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
        "shape needs 12");
    assertCorrupt(withHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "data_offsets");

    Path huge = dir.resolve("huge.safetensors");
    ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(1L << 40).putLong(0);
    Files.write(huge, b.array());
    assertCorrupt(huge, "header length");

    Path tiny = dir.resolve("tiny.safetensors");
    Files.write(tiny, new byte[] {1, 2, 3});
    assertCorrupt(tiny, "shorter than");
  }

  @Test
  void unsupportedDtypeIsNamed() throws IOException {
    Path file = withHeader("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
    ModelException e = assertThrows(ModelException.class, () -> SafetensorsFile.open(file));
    assertTrue(e.getMessage().contains("unsupported dtype F64"), e.getMessage());
  }
}
