package io.kiln.model.onnx;

import java.util.List;

/** A view of one NodeProto: op type, name, inputs, outputs and attributes. */
public final class Node {
  static final int INPUT = 1;
  static final int OUTPUT = 2;
  static final int NAME = 3;
  static final int OP_TYPE = 4;
  static final int ATTRIBUTE = 5;
  static final int DOMAIN = 7;

  // AttributeProto fields and types.
  static final int A_NAME = 1;
  static final int A_I = 3;
  static final int A_T = 5;
  static final int A_INTS = 8;
  static final int A_TYPE = 20;
  static final int TYPE_INT = 2;
  static final int TYPE_TENSOR = 4;
  static final int TYPE_INTS = 7;

  private final Proto proto;

  public Node(Proto proto) {
    this.proto = proto;
  }

  /** A new node; inputs may be empty strings for omitted optional inputs. */
  public static Node create(String opType, String name, List<String> inputs, List<String> outputs) {
    Proto p = new Proto();
    for (String in : inputs) {
      p.addString(INPUT, in);
    }
    for (String out : outputs) {
      p.addString(OUTPUT, out);
    }
    p.setString(NAME, name);
    p.setString(OP_TYPE, opType);
    return new Node(p);
  }

  public Proto proto() {
    return proto;
  }

  public String name() {
    return proto.getString(NAME);
  }

  public String opType() {
    return proto.getString(OP_TYPE);
  }

  public String domain() {
    return proto.getString(DOMAIN);
  }

  public List<String> inputs() {
    return proto.getStrings(INPUT);
  }

  public List<String> outputs() {
    return proto.getStrings(OUTPUT);
  }

  public String input(int i) {
    List<String> in = inputs();
    return i < in.size() ? in.get(i) : "";
  }

  public String output(int i) {
    return outputs().get(i);
  }

  public void setInput(int i, String name) {
    proto.setStringAt(INPUT, i, name);
  }

  public void setOutput(int i, String name) {
    proto.setStringAt(OUTPUT, i, name);
  }

  private Proto attribute(String name) {
    for (Proto a : proto.getMessages(ATTRIBUTE)) {
      if (a.getString(A_NAME).equals(name)) {
        return a;
      }
    }
    return null;
  }

  /** Whether an attribute holds a graph (If, Loop, Scan bodies). */
  public boolean hasSubgraph() {
    for (Proto a : proto.getMessages(ATTRIBUTE)) {
      if (a.has(6) || a.has(11)) {
        return true;
      }
    }
    return false;
  }

  public long intAttribute(String name, long dflt) {
    Proto a = attribute(name);
    return a == null ? dflt : a.getLong(A_I, dflt);
  }

  /** The TensorProto of a tensor attribute (Constant's value), or null. */
  public Proto tensorAttribute(String name) {
    Proto a = attribute(name);
    return a == null ? null : a.getMessage(A_T);
  }

  public Node setIntAttribute(String name, long value) {
    Proto a = mutableAttribute(name, TYPE_INT);
    a.setLong(A_I, value);
    return this;
  }

  public Node setIntsAttribute(String name, long... values) {
    Proto a = mutableAttribute(name, TYPE_INTS);
    a.clear(A_INTS);
    for (long v : values) {
      a.addLong(A_INTS, v);
    }
    return this;
  }

  public Node setTensorAttribute(String name, Proto tensor) {
    Proto a = mutableAttribute(name, TYPE_TENSOR);
    a.clear(A_T);
    a.addMessage(A_T, tensor);
    return this;
  }

  private Proto mutableAttribute(String name, int type) {
    Proto a = attribute(name);
    if (a == null) {
      a = proto.addMessage(ATTRIBUTE);
      a.setString(A_NAME, name);
    }
    a.setLong(A_TYPE, type);
    return a;
  }

  @Override
  public String toString() {
    return opType() + " " + name() + " " + inputs() + " -> " + outputs();
  }
}
