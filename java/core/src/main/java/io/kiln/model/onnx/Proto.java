package io.kiln.model.onnx;

import io.kiln.ModelException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A protobuf message decoded into its fields, kept in wire order so that a message we do not edit
 * encodes back to the same bytes. Decoding checks the wire format strictly, so malformed bytes are
 * rejected in Java before any of them reach native code. Payloads point into the bytes decoded
 * (which must not change afterwards) rather than copying them; nested messages are decoded on first
 * access and re-encoded from the tree.
 */
public final class Proto {
  static final int VARINT = 0;
  static final int FIXED64 = 1;
  static final int LEN = 2;
  static final int FIXED32 = 5;

  private static final int MAX_DEPTH = 64;

  /**
   * One field occurrence. A LEN payload is {@code length} bytes of {@code bytes} from {@code
   * offset}: decoding points into the bytes it was given instead of copying them; {@code message}
   * is the payload's decoded form.
   */
  static final class Field {
    final int number;
    final int wireType;
    long value;
    byte[] bytes;
    int offset;
    int length;
    Proto message;

    Field(int number, int wireType) {
      this.number = number;
      this.wireType = wireType;
    }

    void setPayload(byte[] b) {
      bytes = b;
      offset = 0;
      length = b.length;
      message = null;
    }

    /** The payload as an array of its own length (the backing array itself where it is one). */
    byte[] payload() {
      return offset == 0 && length == bytes.length
          ? bytes
          : java.util.Arrays.copyOfRange(bytes, offset, offset + length);
    }
  }

  private final List<Field> fields = new ArrayList<>();
  private final int depth;
  private long measured; // encoded size, as the last measure() found it: valid within encode()

  public Proto() {
    this(0);
  }

  private Proto(int depth) {
    this.depth = depth;
  }

  /** Decodes a message; any wire-format error becomes a {@link ModelException}. */
  public static Proto parse(byte[] data) {
    return parse(data, 0, data.length, 0);
  }

  private static Proto parse(byte[] data, int from, int to, int depth) {
    if (depth > MAX_DEPTH) {
      throw new ModelException("protobuf nesting deeper than " + MAX_DEPTH);
    }
    Proto p = new Proto(depth);
    int[] pos = {from};
    while (pos[0] < to) {
      long key = readVarint(data, pos, to);
      int number = (int) (key >>> 3);
      int wire = (int) (key & 7);
      if (number <= 0 || (key >>> 3) > 0x1fffffff) {
        throw new ModelException("corrupt protobuf: invalid field number at byte " + pos[0]);
      }
      Field f = new Field(number, wire);
      switch (wire) {
        case VARINT -> f.value = readVarint(data, pos, to);
        case FIXED64 -> f.value = readFixed(data, pos, to, 8);
        case FIXED32 -> f.value = readFixed(data, pos, to, 4);
        case LEN -> {
          long len = readVarint(data, pos, to);
          if (len < 0 || len > to - pos[0]) {
            throw new ModelException(
                "corrupt protobuf: field " + number + " length " + len + " runs past the end");
          }
          f.bytes = data;
          f.offset = pos[0];
          f.length = (int) len;
          pos[0] += (int) len;
        }
        default ->
            throw new ModelException(
                "corrupt protobuf: unsupported wire type " + wire + " for field " + number);
      }
      p.fields.add(f);
    }
    return p;
  }

  private static long readVarint(byte[] d, int[] pos, int to) {
    long result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos[0] >= to) {
        throw new ModelException("corrupt protobuf: truncated varint");
      }
      byte b = d[pos[0]++];
      result |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return result;
      }
    }
    throw new ModelException("corrupt protobuf: varint longer than 10 bytes");
  }

  private static long readFixed(byte[] d, int[] pos, int to, int n) {
    if (to - pos[0] < n) {
      throw new ModelException("corrupt protobuf: truncated fixed-width field");
    }
    long v = 0;
    for (int i = 0; i < n; i++) {
      v |= (long) (d[pos[0] + i] & 0xff) << (8 * i);
    }
    pos[0] += n;
    return v;
  }

  // ---- reading ----

  public boolean has(int number) {
    for (Field f : fields) {
      if (f.number == number) {
        return true;
      }
    }
    return false;
  }

  public long getLong(int number, long dflt) {
    long v = dflt;
    for (Field f : fields) {
      if (f.number == number && f.wireType != LEN) {
        v = f.value;
      }
    }
    return v;
  }

  public float getFloat(int number, float dflt) {
    for (Field f : fields) {
      if (f.number == number && f.wireType == FIXED32) {
        dflt = Float.intBitsToFloat((int) f.value);
      }
    }
    return dflt;
  }

  public String getString(int number) {
    byte[] b = getBytes(number);
    return b == null ? "" : new String(b, StandardCharsets.UTF_8);
  }

  public byte[] getBytes(int number) {
    byte[] v = null;
    for (Field f : fields) {
      if (f.number == number && f.wireType == LEN) {
        v = f.message != null ? f.message.encode() : f.payload();
      }
    }
    return v;
  }

  /** The last occurrence of a nested message, or null. */
  public Proto getMessage(int number) {
    Proto m = null;
    for (Field f : fields) {
      if (f.number == number && f.wireType == LEN) {
        m = decoded(f);
      }
    }
    return m;
  }

  /** A nested message, created empty when absent. */
  public Proto mutableMessage(int number) {
    Proto m = getMessage(number);
    if (m == null) {
      m = addMessage(number);
    }
    return m;
  }

  public List<Proto> getMessages(int number) {
    List<Proto> out = new ArrayList<>();
    for (Field f : fields) {
      if (f.number == number && f.wireType == LEN) {
        out.add(decoded(f));
      }
    }
    return out;
  }

  public List<String> getStrings(int number) {
    List<String> out = new ArrayList<>();
    for (Field f : fields) {
      if (f.number == number && f.wireType == LEN) {
        out.add(new String(f.bytes, f.offset, f.length, StandardCharsets.UTF_8));
      }
    }
    return out;
  }

  /** Repeated integers, packed or not. */
  public long[] getLongs(int number) {
    List<Long> out = new ArrayList<>();
    for (Field f : fields) {
      if (f.number != number) {
        continue;
      }
      if (f.wireType == LEN) {
        int[] pos = {f.offset};
        int end = f.offset + f.length;
        while (pos[0] < end) {
          out.add(readVarint(f.bytes, pos, end));
        }
      } else {
        out.add(f.value);
      }
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }

  /** Repeated floats, packed or not. */
  public float[] getFloats(int number) {
    List<Float> out = new ArrayList<>();
    for (Field f : fields) {
      if (f.number != number) {
        continue;
      }
      if (f.wireType == LEN) {
        if (f.length % 4 != 0) {
          throw new ModelException("corrupt protobuf: packed floats not a multiple of 4 bytes");
        }
        java.nio.FloatBuffer fb =
            java.nio.ByteBuffer.wrap(f.bytes, f.offset, f.length)
                .slice()
                .order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .asFloatBuffer();
        while (fb.hasRemaining()) {
          out.add(fb.get());
        }
      } else {
        out.add(Float.intBitsToFloat((int) f.value));
      }
    }
    float[] r = new float[out.size()];
    for (int i = 0; i < r.length; i++) {
      r[i] = out.get(i);
    }
    return r;
  }

  private Proto decoded(Field f) {
    if (f.message == null) {
      f.message = parse(f.bytes, f.offset, f.offset + f.length, depth + 1);
      f.bytes = null;
    }
    return f.message;
  }

  // ---- writing ----

  public Proto clear(int number) {
    fields.removeIf(f -> f.number == number);
    return this;
  }

  public Proto setLong(int number, long v) {
    clear(number);
    return addLong(number, v);
  }

  public Proto addLong(int number, long v) {
    Field f = new Field(number, VARINT);
    f.value = v;
    fields.add(f);
    return this;
  }

  public Proto setFloat(int number, float v) {
    clear(number);
    return addFloat(number, v);
  }

  public Proto addFloat(int number, float v) {
    Field f = new Field(number, FIXED32);
    f.value = Float.floatToRawIntBits(v) & 0xffffffffL;
    fields.add(f);
    return this;
  }

  public Proto setString(int number, String s) {
    return setBytes(number, s.getBytes(StandardCharsets.UTF_8));
  }

  public Proto addString(int number, String s) {
    return addBytes(number, s.getBytes(StandardCharsets.UTF_8));
  }

  public Proto setBytes(int number, byte[] b) {
    clear(number);
    return addBytes(number, b);
  }

  public Proto addBytes(int number, byte[] b) {
    Field f = new Field(number, LEN);
    f.setPayload(b);
    fields.add(f);
    return this;
  }

  /** Replaces the i-th occurrence of a repeated string field. */
  public void setStringAt(int number, int index, String s) {
    int i = 0;
    for (Field f : fields) {
      if (f.number == number && f.wireType == LEN && i++ == index) {
        f.setPayload(s.getBytes(StandardCharsets.UTF_8));
        return;
      }
    }
    throw new IndexOutOfBoundsException("field " + number + " has no occurrence " + index);
  }

  public Proto addMessage(int number) {
    Field f = new Field(number, LEN);
    f.message = new Proto(depth + 1);
    fields.add(f);
    return f.message;
  }

  public Proto addMessage(int number, Proto message) {
    Field f = new Field(number, LEN);
    f.message = message;
    fields.add(f);
    return message;
  }

  /** Removes occurrences of a message field for which the predicate holds. */
  public void removeMessages(int number, java.util.function.Predicate<Proto> which) {
    fields.removeIf(f -> f.number == number && f.wireType == LEN && which.test(decoded(f)));
  }

  /** Replaces all occurrences of a message field, in order. */
  public void setMessages(int number, List<Proto> messages) {
    int at = -1;
    for (int i = 0; i < fields.size(); i++) {
      if (fields.get(i).number == number) {
        at = i;
        break;
      }
    }
    clear(number);
    if (at < 0 || at > fields.size()) {
      at = fields.size();
    }
    List<Field> inserted = new ArrayList<>();
    for (Proto m : messages) {
      Field f = new Field(number, LEN);
      f.message = m;
      inserted.add(f);
    }
    fields.addAll(at, inserted);
  }

  /**
   * A deep copy of the tree. Byte payloads are shared: they are never modified in place, only
   * replaced, so sharing them keeps copies of multi-GB models cheap.
   */
  public Proto copy() {
    Proto p = new Proto(depth);
    for (Field f : fields) {
      Field c = new Field(f.number, f.wireType);
      c.value = f.value;
      c.bytes = f.bytes;
      c.offset = f.offset;
      c.length = f.length;
      c.message = f.message == null ? null : f.message.copy();
      p.fields.add(c);
    }
    return p;
  }

  /**
   * The message's wire bytes, written into one array of exactly their size: a first pass measures
   * every nested message, the second writes them in place, so a large model is not copied through
   * growing buffers level by level.
   */
  public byte[] encode() {
    long size = measure();
    if (size > Integer.MAX_VALUE - 8) {
      throw new ModelException("a protobuf message of " + size + " bytes does not fit one array");
    }
    byte[] out = new byte[(int) size];
    write(out, 0);
    return out;
  }

  /** Encoded bytes of this message; records each nested message's own size for {@link #write}. */
  private long measure() {
    long n = 0;
    for (Field f : fields) {
      n += varintSize(((long) f.number << 3) | f.wireType);
      switch (f.wireType) {
        case VARINT -> n += varintSize(f.value);
        case FIXED64 -> n += 8;
        case FIXED32 -> n += 4;
        default -> {
          long len = f.message != null ? f.message.measure() : f.length;
          n += varintSize(len) + len;
        }
      }
    }
    measured = n;
    return n;
  }

  /** Writes the fields from {@code at}, nested messages at the sizes {@link #measure} recorded. */
  private int write(byte[] out, int at) {
    for (Field f : fields) {
      at = putVarint(out, at, ((long) f.number << 3) | f.wireType);
      switch (f.wireType) {
        case VARINT -> at = putVarint(out, at, f.value);
        case FIXED64 -> at = putFixed(out, at, f.value, 8);
        case FIXED32 -> at = putFixed(out, at, f.value, 4);
        default -> {
          if (f.message != null) {
            at = putVarint(out, at, f.message.measured);
            at = f.message.write(out, at);
          } else {
            at = putVarint(out, at, f.length);
            System.arraycopy(f.bytes, f.offset, out, at, f.length);
            at += f.length;
          }
        }
      }
    }
    return at;
  }

  private static int varintSize(long v) {
    int n = 1;
    while ((v & ~0x7fL) != 0) {
      v >>>= 7;
      n++;
    }
    return n;
  }

  private static int putVarint(byte[] out, int at, long v) {
    while ((v & ~0x7fL) != 0) {
      out[at++] = (byte) ((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out[at++] = (byte) v;
    return at;
  }

  private static int putFixed(byte[] out, int at, long v, int n) {
    for (int i = 0; i < n; i++) {
      out[at++] = (byte) (v >>> (8 * i));
    }
    return at;
  }
}
