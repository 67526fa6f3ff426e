package io.kiln.model.onnx;

import io.kiln.Float16;
import io.kiln.ModelException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/** Reading and building TensorProto messages (initializers and constant values). */
public final class TensorProtos {
  private TensorProtos() {}

  static final int DIMS = 1;
  static final int DATA_TYPE = 2;
  static final int FLOAT_DATA = 4;
  static final int INT32_DATA = 5;
  static final int INT64_DATA = 7;
  static final int NAME = 8;
  static final int RAW_DATA = 9;
  static final int DOUBLE_DATA = 10;
  static final int EXTERNAL_DATA = 13;
  static final int DATA_LOCATION = 14;
  static final int LOCATION_EXTERNAL = 1;

  // TensorProto.DataType values.
  public static final int FLOAT = 1;
  public static final int UINT8 = 2;
  public static final int INT8 = 3;
  public static final int INT32 = 6;
  public static final int INT64 = 7;
  public static final int BOOL = 9;
  public static final int FLOAT16 = 10;
  public static final int DOUBLE = 11;

  public static String name(Proto t) {
    return t.getString(NAME);
  }

  public static int dataType(Proto t) {
    return (int) t.getLong(DATA_TYPE, 0);
  }

  public static long[] dims(Proto t) {
    return t.getLongs(DIMS);
  }

  public static long elementCount(Proto t) {
    long n = 1;
    for (long d : dims(t)) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  public static boolean isExternal(Proto t) {
    return t.getLong(DATA_LOCATION, 0) == LOCATION_EXTERNAL;
  }

  /** The raw little-endian bytes, or null when the values sit in typed fields. */
  public static byte[] rawData(Proto t) {
    return t.getBytes(RAW_DATA);
  }

  /** The values of a FLOAT, FLOAT16 or DOUBLE tensor as floats. */
  public static float[] floats(Proto t) {
    int type = dataType(t);
    int n = Math.toIntExact(elementCount(t));
    byte[] raw = rawData(t);
    float[] out;
    if (type == FLOAT) {
      if (raw != null) {
        out = new float[n];
        checkRaw(t, raw, 4L * n);
        leBuffer(raw).asFloatBuffer().get(out);
      } else {
        out = t.getFloats(FLOAT_DATA);
      }
    } else if (type == FLOAT16) {
      out = new float[n];
      if (raw != null) {
        checkRaw(t, raw, 2L * n);
        java.nio.ShortBuffer sb = leBuffer(raw).asShortBuffer();
        for (int i = 0; i < n; i++) {
          out[i] = Float16.halfToFloat(sb.get(i));
        }
      } else {
        long[] bits = t.getLongs(INT32_DATA);
        for (int i = 0; i < n; i++) {
          out[i] = Float16.halfToFloat((short) bits[i]);
        }
      }
    } else if (type == DOUBLE) {
      out = new float[n];
      if (raw != null) {
        checkRaw(t, raw, 8L * n);
        java.nio.DoubleBuffer db = leBuffer(raw).asDoubleBuffer();
        for (int i = 0; i < n; i++) {
          out[i] = (float) db.get(i);
        }
      } else {
        throw new ModelException("tensor " + name(t) + ": double_data is not supported");
      }
    } else {
      throw new ModelException("tensor " + name(t) + " is not floating point (type " + type + ")");
    }
    if (out.length != n) {
      throw new ModelException(
          "tensor " + name(t) + " holds " + out.length + " values for " + n + " elements");
    }
    return out;
  }

  /** The values of an integer tensor as longs. */
  public static long[] longs(Proto t) {
    int type = dataType(t);
    int n = Math.toIntExact(elementCount(t));
    byte[] raw = rawData(t);
    long[] out = new long[n];
    if (raw == null) {
      long[] v = t.getLongs(type == INT64 ? INT64_DATA : INT32_DATA);
      if (v.length != n) {
        throw new ModelException("tensor " + name(t) + " holds " + v.length + " values");
      }
      return v;
    }
    ByteBuffer b = leBuffer(raw);
    switch (type) {
      case INT64 -> {
        checkRaw(t, raw, 8L * n);
        b.asLongBuffer().get(out);
      }
      case INT32 -> {
        checkRaw(t, raw, 4L * n);
        for (int i = 0; i < n; i++) {
          out[i] = b.getInt(4 * i);
        }
      }
      case INT8, UINT8, BOOL -> {
        checkRaw(t, raw, n);
        for (int i = 0; i < n; i++) {
          out[i] = type == UINT8 || type == BOOL ? raw[i] & 0xff : raw[i];
        }
      }
      default -> throw new ModelException("tensor " + name(t) + " is not an integer tensor");
    }
    return out;
  }

  private static void checkRaw(Proto t, byte[] raw, long expected) {
    if (raw.length != expected) {
      throw new ModelException(
          "tensor "
              + name(t)
              + " "
              + Arrays.toString(dims(t))
              + " has "
              + raw.length
              + " raw bytes, expected "
              + expected);
    }
  }

  static ByteBuffer leBuffer(byte[] raw) {
    return ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static Proto header(String name, int type, long[] dims) {
    Proto t = new Proto();
    for (long d : dims) {
      t.addLong(DIMS, d);
    }
    t.setLong(DATA_TYPE, type);
    t.setString(NAME, name);
    return t;
  }

  public static Proto ofFloats(String name, float[] values, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return header(name, FLOAT, dims).setBytes(RAW_DATA, b.array());
  }

  public static Proto ofLongs(String name, long[] values, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.asLongBuffer().put(values);
    return header(name, INT64, dims).setBytes(RAW_DATA, b.array());
  }

  /** A FLOAT16 tensor from floats, rounded to nearest even. */
  public static Proto ofHalves(String name, float[] values, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < values.length; i++) {
      b.putShort(2 * i, Float16.floatToHalf(values[i]));
    }
    return header(name, FLOAT16, dims).setBytes(RAW_DATA, b.array());
  }

  public static Proto ofInt8(String name, byte[] values, long... dims) {
    return header(name, INT8, dims).setBytes(RAW_DATA, values.clone());
  }

  public static Proto ofUint8(String name, byte[] values, long... dims) {
    return header(name, UINT8, dims).setBytes(RAW_DATA, values.clone());
  }
}
