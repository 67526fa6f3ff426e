package io.kiln.model.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.DType;
import io.kiln.Float16;
import io.kiln.Float8;
import io.kiln.ModelException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One {@code .safetensors} file: an 8-byte little-endian header length, a JSON header, then the raw
 * tensor bytes. Tensor data is memory-mapped on demand, in windows below 2 GiB.
 */
public final class SafetensorsFile implements AutoCloseable {
  /** Largest header accepted; real headers are a few hundred KiB. */
  private static final long MAX_HEADER_BYTES = 100L << 20;

  /** Largest window mapped at once; a MappedByteBuffer cannot exceed 2 GiB. */
  private static final long MAP_WINDOW_BYTES = 1L << 30;

  private final Path path;
  private final FileChannel channel;
  private final Map<String, SafetensorsTensor> tensors;
  private final Map<String, String> metadata;

  private SafetensorsFile(
      Path path,
      FileChannel channel,
      Map<String, SafetensorsTensor> tensors,
      Map<String, String> metadata) {
    this.path = path;
    this.channel = channel;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  public static SafetensorsFile open(Path path) {
    FileChannel channel;
    try {
      channel = FileChannel.open(path, StandardOpenOption.READ);
    } catch (NoSuchFileException e) {
      throw new ModelException("safetensors file not found: " + path);
    } catch (IOException e) {
      throw new ModelException("cannot open safetensors file " + path + ": " + e.getMessage(), e);
    }
    try {
      long fileSize = channel.size();
      if (fileSize < 8) {
        throw corrupt(
            path, "file is " + fileSize + " bytes, shorter than the 8-byte header length");
      }
      ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(channel, lengthBytes, 0);
      long headerLength = lengthBytes.getLong(0);
      if (headerLength <= 0 || headerLength > MAX_HEADER_BYTES || headerLength > fileSize - 8) {
        throw corrupt(
            path,
            "header length " + headerLength + " does not fit a file of " + fileSize + " bytes");
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLength);
      readFully(channel, header, 8);
      String json = new String(header.array(), StandardCharsets.UTF_8);
      long dataStart = 8 + headerLength;
      Map<String, String> metadata = new LinkedHashMap<>();
      Map<String, SafetensorsTensor> tensors =
          parseHeader(path, json, dataStart, fileSize - dataStart, metadata);
      return new SafetensorsFile(
          path,
          channel,
          Collections.unmodifiableMap(tensors),
          Collections.unmodifiableMap(metadata));
    } catch (IOException e) {
      closeQuietly(channel);
      throw new ModelException("cannot read safetensors file " + path + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      closeQuietly(channel);
      throw e;
    }
  }

  private static Map<String, SafetensorsTensor> parseHeader(
      Path path, String json, long dataStart, long dataBytes, Map<String, String> metadata) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(json);
    } catch (JsonProcessingException e) {
      throw corrupt(path, "header is not valid JSON: " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) {
      throw corrupt(path, "header is not a JSON object");
    }
    Map<String, SafetensorsTensor> tensors = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> field = it.next();
      String name = field.getKey();
      JsonNode entry = field.getValue();
      if (name.equals("__metadata__")) {
        entry.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
        continue;
      }
      JsonNode dtypeNode = entry.get("dtype");
      JsonNode shapeNode = entry.get("shape");
      JsonNode offsetsNode = entry.get("data_offsets");
      if (dtypeNode == null
          || shapeNode == null
          || !shapeNode.isArray()
          || offsetsNode == null
          || !offsetsNode.isArray()
          || offsetsNode.size() != 2) {
        throw corrupt(path, "tensor '" + name + "' needs dtype, shape and two data_offsets");
      }
      DType dtype = SafetensorsTensor.fromHeaderName(dtypeNode.asText());
      if (dtype == null) {
        throw new ModelException(
            "tensor '" + name + "' in " + path + " has unsupported dtype " + dtypeNode.asText());
      }
      long[] shape = new long[shapeNode.size()];
      long elements = 1;
      for (int i = 0; i < shape.length; i++) {
        shape[i] = shapeNode.get(i).asLong(-1);
        if (shape[i] < 0) {
          throw corrupt(path, "tensor '" + name + "' has a negative dimension");
        }
        elements = Math.multiplyExact(elements, shape[i]);
      }
      long begin = offsetsNode.get(0).asLong(-1);
      long end = offsetsNode.get(1).asLong(-1);
      if (begin < 0 || end < begin || end > dataBytes) {
        throw corrupt(
            path,
            "tensor '"
                + name
                + "' data_offsets ["
                + begin
                + ", "
                + end
                + "] outside the "
                + dataBytes
                + " data bytes");
      }
      if (end - begin != elements * dtype.byteSize()) {
        throw corrupt(
            path,
            "tensor '"
                + name
                + "' has "
                + (end - begin)
                + " bytes but its shape needs "
                + elements * dtype.byteSize());
      }
      tensors.put(name, new SafetensorsTensor(name, dtype, shape, dataStart + begin, end - begin));
    }
    return tensors;
  }

  public Path path() {
    return path;
  }

  /** Tensor entries by name, in header order. */
  public Map<String, SafetensorsTensor> tensors() {
    return tensors;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * Reads a tensor as float32, converting from f16/bf16, or, for stored weights, from FP8 E4M3 and
   * INT8 codes (their values, before any scale).
   */
  public float[] readFloats(String name) {
    SafetensorsTensor t = tensors.get(name);
    if (t == null) {
      throw new ModelException("tensor '" + name + "' not found in " + path);
    }
    if (!t.dtype().isFloatingPoint() && t.dtype() != DType.F8E4M3 && t.dtype() != DType.I8) {
      throw new ModelException(
          "tensor '"
              + name
              + "' in "
              + path
              + " is "
              + t.dtype().onnxName()
              + ", expected a floating-point type");
    }
    if (t.elementCount() > Integer.MAX_VALUE - 8) {
      throw new ModelException("tensor '" + name + "' is too large for one float array");
    }
    float[] out = new float[(int) t.elementCount()];
    int elementSize = t.dtype().byteSize();
    long windowElements = MAP_WINDOW_BYTES / elementSize;
    for (long first = 0; first < out.length; first += windowElements) {
      int count = (int) Math.min(windowElements, out.length - first);
      ByteBuffer window = map(t.dataOffset() + first * elementSize, (long) count * elementSize);
      decode(t.dtype(), window, out, (int) first, count);
    }
    return out;
  }

  /** A read-only little-endian view of a tensor's bytes (below 2 GiB). */
  public ByteBuffer bytes(String name) {
    SafetensorsTensor t = tensors.get(name);
    if (t == null) {
      throw new ModelException("tensor '" + name + "' not found in " + path);
    }
    if (t.byteLength() > Integer.MAX_VALUE) {
      throw new ModelException("tensor '" + name + "' is too large for one buffer");
    }
    return map(t.dataOffset(), t.byteLength());
  }

  private ByteBuffer map(long offset, long length) {
    try {
      MappedByteBuffer mapped = channel.map(FileChannel.MapMode.READ_ONLY, offset, length);
      return mapped.order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new ModelException("cannot map " + path + ": " + e.getMessage(), e);
    }
  }

  private static void decode(DType dtype, ByteBuffer src, float[] dst, int at, int count) {
    switch (dtype) {
      case F32:
        src.asFloatBuffer().get(dst, at, count);
        break;
      case F16:
        for (int i = 0; i < count; i++) {
          dst[at + i] = Float16.halfToFloat(src.getShort(2 * i));
        }
        break;
      case BF16:
        for (int i = 0; i < count; i++) {
          dst[at + i] = Float16.bf16ToFloat(src.getShort(2 * i));
        }
        break;
      case F8E4M3:
        for (int i = 0; i < count; i++) {
          dst[at + i] = Float8.e4m3ToFloat(src.get(i));
        }
        break;
      case I8:
        for (int i = 0; i < count; i++) {
          dst[at + i] = src.get(i);
        }
        break;
      default:
        throw new IllegalStateException(dtype.toString());
    }
  }

  private static void readFully(FileChannel channel, ByteBuffer dst, long position)
      throws IOException {
    while (dst.hasRemaining()) {
      int n = channel.read(dst, position + dst.position());
      if (n < 0) {
        throw new IOException("unexpected end of file");
      }
    }
  }

  private static ModelException corrupt(Path path, String why) {
    return new ModelException("corrupt safetensors header in " + path + ": " + why);
  }

  private static void closeQuietly(FileChannel channel) {
    try {
      channel.close();
    } catch (IOException ignored) {
      // the open already failed; that error is the one to report
    }
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      throw new ModelException("cannot close " + path + ": " + e.getMessage(), e);
    }
  }
}
