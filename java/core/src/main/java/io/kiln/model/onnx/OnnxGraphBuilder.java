package io.kiln.model.onnx;

import io.kiln.ModelException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Builds an ONNX model (nodes, initializers, typed inputs and outputs) and writes it as protobuf.
 * Initializers go inline, or into one external data file beside the model when asked, which models
 * above protobuf's 2 GiB limit need.
 */
public final class OnnxGraphBuilder implements AutoCloseable {
  // TensorProto.DataType
  public static final int FLOAT = 1;
  public static final int INT64 = 7;
  public static final int BOOL = 9;

  private final String name;
  private final int opset;
  private final List<ProtoWriter> nodes = new ArrayList<>();
  private final List<ProtoWriter> initializers = new ArrayList<>();
  private final List<ProtoWriter> inputs = new ArrayList<>();
  private final List<ProtoWriter> outputs = new ArrayList<>();
  private final Set<String> constants = new HashSet<>();
  private final String externalFileName;
  private final OutputStream external;
  private long externalOffset;
  private int counter;

  /**
   * @param externalData where initializer bytes go, or null to keep them inside the model
   */
  public OnnxGraphBuilder(String name, int opset, Path externalData) {
    this.name = name;
    this.opset = opset;
    if (externalData == null) {
      this.externalFileName = null;
      this.external = null;
    } else {
      this.externalFileName = externalData.getFileName().toString();
      try {
        this.external =
            new java.io.BufferedOutputStream(Files.newOutputStream(externalData), 1 << 20);
      } catch (IOException e) {
        throw new ModelException("cannot write " + externalData + ": " + e.getMessage(), e);
      }
    }
  }

  /** A fresh value name with a readable prefix. */
  public String fresh(String prefix) {
    return prefix + "_" + counter++;
  }

  /** A graph input or output; a dimension is a Long (fixed) or a String (symbolic). */
  private static ProtoWriter valueInfo(String name, int elemType, Object... dims) {
    ProtoWriter shape = new ProtoWriter();
    for (Object d : dims) {
      ProtoWriter dim = new ProtoWriter();
      if (d instanceof String s) {
        dim.string(2, s);
      } else {
        dim.varint(1, ((Number) d).longValue());
      }
      shape.message(1, dim);
    }
    ProtoWriter tensorType = new ProtoWriter().varint(1, elemType).message(2, shape);
    ProtoWriter type = new ProtoWriter().message(1, tensorType);
    return new ProtoWriter().string(1, name).message(2, type);
  }

  public void input(String name, int elemType, Object... dims) {
    inputs.add(valueInfo(name, elemType, dims));
  }

  public void output(String name, int elemType, Object... dims) {
    outputs.add(valueInfo(name, elemType, dims));
  }

  /** A float initializer from row-major values. */
  public String floats(String name, float[] values, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(values);
    return initializer(name, FLOAT, b.array(), dims);
  }

  /** {@code [out][in]} weights stored transposed as {@code [in][out]}, for MatMul. */
  public String transposed(String name, float[] weights, int out, int in) {
    ByteBuffer b = ByteBuffer.allocate(weights.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < in; i++) {
      for (int o = 0; o < out; o++) {
        b.putFloat(weights[o * in + i]);
      }
    }
    return initializer(name, FLOAT, b.array(), in, out);
  }

  public String ints(String name, long[] values, long... dims) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      b.putLong(v);
    }
    return initializer(name, INT64, b.array(), dims);
  }

  /** A 1-D int64 constant, named after its values. */
  public String intVector(long... values) {
    StringBuilder n = new StringBuilder("const_i64");
    for (long v : values) {
      n.append('_').append(v < 0 ? "m" + -v : v);
    }
    String name = n.toString();
    if (!constants.contains(name)) {
      constants.add(name);
      ints(name, values, values.length);
    }
    return name;
  }

  /** A scalar float constant. */
  public String floatScalar(String name, float value) {
    if (!constants.contains(name)) {
      constants.add(name);
      floats(name, new float[] {value});
    }
    return name;
  }

  public String intScalar(String name, long value) {
    if (!constants.contains(name)) {
      constants.add(name);
      ints(name, new long[] {value});
    }
    return name;
  }

  private String initializer(String name, int dataType, byte[] raw, long... dims) {
    boolean inline = external == null || raw.length < 1024;
    ProtoWriter t = new ProtoWriter(inline ? raw.length + 256 : 256);
    for (long d : dims) {
      t.varint(1, d);
    }
    t.varint(2, dataType).string(8, name);
    // Small constants stay inline so tools can fold shapes without the data file.
    if (!inline) {
      try {
        external.write(raw);
      } catch (IOException e) {
        throw new ModelException("cannot write external data: " + e.getMessage(), e);
      }
      t.message(13, new ProtoWriter().string(1, "location").string(2, externalFileName));
      t.message(13, new ProtoWriter().string(1, "offset").string(2, Long.toString(externalOffset)));
      t.message(13, new ProtoWriter().string(1, "length").string(2, Long.toString(raw.length)));
      t.varint(14, 1);
      externalOffset += raw.length;
    } else {
      t.bytes(9, raw);
    }
    initializers.add(t);
    return name;
  }

  /** Adds a node; attributes are given as name/value pairs (Long, Float, long[] or String). */
  public void node(String op, String[] in, String[] out, Object... attributes) {
    ProtoWriter n = new ProtoWriter();
    for (String i : in) {
      n.string(1, i);
    }
    for (String o : out) {
      n.string(2, o);
    }
    n.string(3, out[0] + "_" + op).string(4, op);
    for (int a = 0; a < attributes.length; a += 2) {
      n.message(5, attribute((String) attributes[a], attributes[a + 1]));
    }
    nodes.add(n);
  }

  /** A one-output node whose output gets a fresh name. */
  public String op(String op, String[] in, Object... attributes) {
    String out = fresh(op.toLowerCase(java.util.Locale.ROOT));
    node(op, in, new String[] {out}, attributes);
    return out;
  }

  public String op(String op, String a) {
    return op(op, new String[] {a});
  }

  public String op(String op, String a, String b) {
    return op(op, new String[] {a, b});
  }

  private static ProtoWriter attribute(String name, Object value) {
    ProtoWriter a = new ProtoWriter().string(1, name);
    if (value instanceof Float f) {
      a.fixed32(2, f).varint(20, 1);
    } else if (value instanceof Long || value instanceof Integer) {
      a.varint(3, ((Number) value).longValue()).varint(20, 2);
    } else if (value instanceof String s) {
      a.string(4, s).varint(20, 3);
    } else if (value instanceof long[] ints) {
      for (long v : ints) {
        a.varint(8, v);
      }
      a.varint(20, 7);
    } else {
      throw new IllegalArgumentException("attribute " + name + ": " + value);
    }
    return a;
  }

  /**
   * Serializes the model (IR version 8) to {@code file}, streaming the graph's parts one by one so
   * that no copy of the whole model is built in memory.
   */
  public void write(Path file, String producer) {
    close();
    List<List<ProtoWriter>> parts = List.of(nodes, initializers, inputs, outputs);
    int[] fields = {1, 5, 11, 12};
    ProtoWriter graphName = new ProtoWriter().string(2, name);
    long graphSize = graphName.size();
    for (int p = 0; p < parts.size(); p++) {
      for (ProtoWriter part : parts.get(p)) {
        graphSize += ProtoWriter.fieldSize(fields[p], part.size());
      }
    }
    ProtoWriter head = new ProtoWriter().varint(1, 8).string(2, producer);
    ProtoWriter opsetImport =
        new ProtoWriter().message(8, new ProtoWriter().string(1, "").varint(2, opset));
    try (OutputStream out =
        new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
      head.writeTo(out);
      ProtoWriter.writeHeader(out, 7, graphSize);
      for (int p = 0; p < parts.size(); p++) {
        if (p == 1) {
          graphName.writeTo(out);
        }
        for (ProtoWriter part : parts.get(p)) {
          ProtoWriter.writeHeader(out, fields[p], part.size());
          part.writeTo(out);
        }
      }
      opsetImport.writeTo(out);
    } catch (IOException e) {
      throw new ModelException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    if (external != null) {
      try {
        external.close();
      } catch (IOException e) {
        throw new ModelException("cannot write external data: " + e.getMessage(), e);
      }
    }
  }
}
