package io.kiln.model.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.Float16;
import io.kiln.Float8;
import io.kiln.ModelException;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Streams one {@code .safetensors} file: the header is written from the declared tensors up front,
 * then each tensor's values arrive in order, chunk by chunk, so no tensor need be held whole.
 */
public final class SafetensorsWriter implements AutoCloseable {
  /** A tensor to be written: its name, stored dtype and shape. */
  public record Entry(String name, DType dtype, long[] shape) {
    public long elementCount() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }

    public long byteLength() {
      return elementCount() * dtype.byteSize();
    }
  }

  private final Path path;
  private final OutputStream out;
  private final List<Entry> entries;
  private int current;
  private long writtenOfCurrent;
  private ByteBuffer scratch = ByteBuffer.allocate(0);

  public SafetensorsWriter(Path path, List<Entry> entries, Map<String, String> metadata) {
    for (Entry e : entries) {
      if (!e.dtype().isFloatingPoint() && e.dtype() != DType.F8E4M3 && e.dtype() != DType.I8) {
        throw new IllegalArgumentException(
            "only float tensors and INT8 or FP8 weight codes are written: " + e.name());
      }
    }
    this.path = path;
    this.entries = new ArrayList<>(entries);
    byte[] header = header(this.entries, metadata);
    try {
      this.out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20);
      ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      length.putLong(header.length);
      out.write(length.array());
      out.write(header);
    } catch (IOException e) {
      throw new ModelException("cannot write " + path + ": " + e.getMessage(), e);
    }
    skipEmpty();
  }

  /** Header JSON padded with spaces so the data starts 8-byte aligned. */
  private static byte[] header(List<Entry> entries, Map<String, String> metadata) {
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode root = mapper.createObjectNode();
    ObjectNode meta = root.putObject("__metadata__");
    Map<String, String> m = new LinkedHashMap<>(metadata);
    m.putIfAbsent("format", "pt");
    m.forEach(meta::put);
    long offset = 0;
    for (Entry e : entries) {
      ObjectNode node = root.putObject(e.name());
      node.put("dtype", SafetensorsTensor.headerName(e.dtype()));
      ArrayNode shape = node.putArray("shape");
      for (long d : e.shape()) {
        shape.add(d);
      }
      ArrayNode offsets = node.putArray("data_offsets");
      offsets.add(offset);
      offset += e.byteLength();
      offsets.add(offset);
    }
    byte[] json;
    try {
      json = mapper.writeValueAsBytes(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    int padded = (json.length + 7) / 8 * 8;
    byte[] header = new byte[padded];
    System.arraycopy(json, 0, header, 0, json.length);
    for (int i = json.length; i < padded; i++) {
      header[i] = (byte) ' ';
    }
    return header;
  }

  /** Name of the tensor whose values are expected next, or null when all are written. */
  public String expected() {
    return current < entries.size() ? entries.get(current).name() : null;
  }

  /** Appends {@code count} values of the current tensor, converted to its stored dtype. */
  public void write(float[] values, int count) {
    if (current >= entries.size()) {
      throw new IllegalStateException("all tensors of " + path + " are already written");
    }
    Entry e = entries.get(current);
    long remaining = e.elementCount() - writtenOfCurrent;
    if (count > remaining) {
      throw new IllegalStateException(
          "tensor " + e.name() + " takes " + remaining + " more values, got " + count);
    }
    int bytes = count * e.dtype().byteSize();
    if (scratch.capacity() < bytes) {
      scratch = ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }
    scratch.clear();
    switch (e.dtype()) {
      case F32:
        for (int i = 0; i < count; i++) {
          scratch.putFloat(values[i]);
        }
        break;
      case F16:
        for (int i = 0; i < count; i++) {
          scratch.putShort(Float16.floatToHalf(values[i]));
        }
        break;
      case BF16:
        for (int i = 0; i < count; i++) {
          scratch.putShort(Float16.floatToBf16(values[i]));
        }
        break;
      case F8E4M3:
        for (int i = 0; i < count; i++) {
          scratch.put(Float8.floatToE4m3(values[i]));
        }
        break;
      case I8:
        // Codes of a quantized weight: integral values, already within [-127, 127].
        for (int i = 0; i < count; i++) {
          scratch.put((byte) Math.max(-127, Math.min(127, Math.round(values[i]))));
        }
        break;
      default:
        throw new IllegalStateException(e.dtype().toString());
    }
    try {
      out.write(scratch.array(), 0, bytes);
    } catch (IOException ex) {
      throw new ModelException("cannot write " + path + ": " + ex.getMessage(), ex);
    }
    writtenOfCurrent += count;
    if (writtenOfCurrent == e.elementCount()) {
      current++;
      writtenOfCurrent = 0;
      skipEmpty();
    }
  }

  private void skipEmpty() {
    while (current < entries.size() && entries.get(current).elementCount() == 0) {
      current++;
    }
  }

  /** Writes a whole file from in-memory float arrays, stored as {@code dtype}. */
  public static void writeAll(
      Path path, Map<String, float[]> tensors, Map<String, long[]> shapes, DType dtype) {
    List<Entry> entries = new ArrayList<>();
    tensors.forEach((name, v) -> entries.add(new Entry(name, dtype, shapes.get(name))));
    try (SafetensorsWriter w = new SafetensorsWriter(path, entries, Map.of())) {
      for (Entry e : entries) {
        float[] v = tensors.get(e.name());
        if (v.length != e.elementCount()) {
          throw new IllegalArgumentException(
              "tensor "
                  + e.name()
                  + " has "
                  + v.length
                  + " values for shape of "
                  + e.elementCount());
        }
        w.write(v, v.length);
      }
    }
  }

  @Override
  public void close() {
    try {
      out.close();
    } catch (IOException e) {
      throw new ModelException("cannot write " + path + ": " + e.getMessage(), e);
    }
    if (current < entries.size()) {
      throw new IllegalStateException(
          path + " closed before tensor " + entries.get(current).name() + " was written");
    }
  }
}
