package io.kiln;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/** Writes tiny single-op ONNX models as raw protobuf bytes, for tests that need a float input. */
public final class TinyOnnx {
  private static final int FLOAT = 1;

  private TinyOnnx() {}

  /** {@code y = Relu(x)} with x and y float32 of shape [batch, width]. */
  public static byte[] relu(int width) {
    byte[] node = concat(str(1, "x"), str(2, "y"), str(3, "relu"), str(4, "Relu"));
    byte[] graph =
        concat(
            msg(1, node),
            str(2, "tiny"),
            msg(11, valueInfo("x", width)),
            msg(12, valueInfo("y", width)));
    byte[] opset = concat(str(1, ""), varintField(2, 17));
    return concat(varintField(1, 8), msg(8, opset), msg(7, graph));
  }

  private static byte[] valueInfo(String name, int width) {
    byte[] batch = str(2, "batch");
    byte[] fixed = varintField(1, width);
    byte[] shape = concat(msg(1, batch), msg(1, fixed));
    byte[] tensorType = concat(varintField(1, FLOAT), msg(2, shape));
    return concat(str(1, name), msg(2, msg(1, tensorType)));
  }

  private static byte[] str(int field, String s) {
    return msg(field, s.getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] msg(int field, byte[] body) {
    return concat(varint((field << 3) | 2), varint(body.length), body);
  }

  private static byte[] varintField(int field, long value) {
    return concat(varint(field << 3), varint(value));
  }

  private static byte[] varint(long v) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while ((v & ~0x7fL) != 0) {
      out.write((int) ((v & 0x7f) | 0x80));
      v >>>= 7;
    }
    out.write((int) v);
    return out.toByteArray();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }
}
