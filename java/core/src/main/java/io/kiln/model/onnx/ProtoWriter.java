package io.kiln.model.onnx;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** Protocol-buffer wire encoding of one message, enough to write ONNX models. */
final class ProtoWriter {
  private final ByteArrayOutputStream out;

  ProtoWriter() {
    this(32);
  }

  /**
   * A writer sized for about {@code capacity} bytes, so large tensors are not copied as it grows.
   */
  ProtoWriter(int capacity) {
    out = new ByteArrayOutputStream(capacity);
  }

  ProtoWriter varint(int field, long value) {
    tag(field, 0);
    rawVarint(value);
    return this;
  }

  ProtoWriter fixed32(int field, float value) {
    tag(field, 5);
    int bits = Float.floatToRawIntBits(value);
    for (int i = 0; i < 4; i++) {
      out.write(bits >>> (8 * i));
    }
    return this;
  }

  ProtoWriter string(int field, String value) {
    return bytes(field, value.getBytes(StandardCharsets.UTF_8));
  }

  ProtoWriter bytes(int field, byte[] value) {
    tag(field, 2);
    rawVarint(value.length);
    out.writeBytes(value);
    return this;
  }

  ProtoWriter message(int field, ProtoWriter message) {
    return bytes(field, message.toByteArray());
  }

  byte[] toByteArray() {
    return out.toByteArray();
  }

  int size() {
    return out.size();
  }

  void writeTo(OutputStream stream) throws IOException {
    out.writeTo(stream);
  }

  /** Writes a length-delimited field's tag and length, for a body streamed after it. */
  static void writeHeader(OutputStream stream, int field, long length) throws IOException {
    ProtoWriter header = new ProtoWriter();
    header.tag(field, 2);
    header.rawVarint(length);
    header.writeTo(stream);
  }

  /** Bytes a length-delimited field of {@code length} body bytes takes in all. */
  static long fieldSize(int field, long length) {
    ProtoWriter header = new ProtoWriter();
    header.tag(field, 2);
    header.rawVarint(length);
    return header.size() + length;
  }

  private void tag(int field, int wireType) {
    rawVarint(((long) field << 3) | wireType);
  }

  private void rawVarint(long value) {
    while ((value & ~0x7FL) != 0) {
      out.write((int) ((value & 0x7F) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }
}
