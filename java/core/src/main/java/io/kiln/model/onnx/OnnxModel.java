package io.kiln.model.onnx;

import io.kiln.ModelException;
import io.kiln.model.ModelSource;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An ONNX model held as a decoded protobuf tree, with the edits the precision passes need: nodes,
 * initializers, graph inputs/outputs and value infos. Checking and shape inference run in the ONNX
 * library through the bytedeco preset ({@link OnnxNative}).
 *
 * <p>Tensors stored as external data are read into memory on load; {@link #save(Path, boolean)}
 * writes them back out to a {@code .data} file beside the model, which is how models over the 2 GB
 * protobuf limit are saved.
 */
public final class OnnxModel {
  static final int M_IR_VERSION = 1;
  static final int M_GRAPH = 7;
  static final int M_OPSET_IMPORT = 8;
  static final int G_NODE = 1;
  static final int G_INITIALIZER = 5;
  static final int G_INPUT = 11;
  static final int G_OUTPUT = 12;
  static final int G_VALUE_INFO = 13;
  static final int VI_NAME = 1;
  static final int VI_TYPE = 2;
  static final int TYPE_TENSOR = 1;
  static final int TT_ELEM_TYPE = 1;
  static final int TT_SHAPE = 2;
  static final int SHAPE_DIM = 1;
  static final int DIM_VALUE = 1;
  static final int DIM_PARAM = 2;

  /** Tensors at least this large go to the external data file when saving with external data. */
  static final int EXTERNAL_THRESHOLD = 1024;

  /** Protobuf cannot serialize a message of 2 GiB or more. */
  static final long PROTOBUF_LIMIT = Integer.MAX_VALUE;

  private final Proto model;

  private OnnxModel(Proto model) {
    this.model = model;
  }

  /** Parses and validates model bytes whose tensors are all stored inline. */
  public static OnnxModel parse(byte[] bytes) {
    return parse(bytes, null);
  }

  private static OnnxModel parse(byte[] bytes, Path baseDir) {
    if (bytes.length == 0) {
      throw new ModelException("model is empty");
    }
    Proto p;
    try {
      p = Proto.parse(bytes);
    } catch (ModelException e) {
      throw new ModelException("not a valid ONNX model: " + e.getMessage(), e);
    }
    OnnxModel m = new OnnxModel(p);
    m.validate();
    m.loadExternalData(baseDir);
    return m;
  }

  /** Loads a model file, reading external data relative to the file's directory. */
  public static OnnxModel load(Path path) {
    try {
      Path abs = path.toAbsolutePath();
      return parse(Files.readAllBytes(abs), abs.getParent());
    } catch (NoSuchFileException e) {
      throw new ModelException("model file not found: " + path);
    } catch (IOException e) {
      throw new ModelException("cannot read model file " + path + ": " + e.getMessage(), e);
    }
  }

  public static OnnxModel of(ModelSource source) {
    Path dir = source.path().map(p -> p.toAbsolutePath().getParent()).orElse(null);
    return parse(source.bytes(), dir);
  }

  /** A deep copy. */
  public OnnxModel copy() {
    return new OnnxModel(model.copy());
  }

  private void validate() {
    if (!model.has(M_GRAPH)) {
      throw new ModelException("not an ONNX model: no graph");
    }
    if (model.getLong(M_IR_VERSION, 0) <= 0) {
      throw new ModelException("not an ONNX model: no IR version");
    }
    try {
      Proto g = graph();
      for (Proto n : g.getMessages(G_NODE)) {
        Node node = new Node(n);
        if (node.opType().isEmpty()) {
          throw new ModelException("node " + node.name() + " has no op type");
        }
        n.getMessages(Node.ATTRIBUTE).forEach(a -> a.getMessages(Node.A_T));
      }
      for (Proto t : g.getMessages(G_INITIALIZER)) {
        TensorProtos.dims(t);
        t.getMessages(TensorProtos.EXTERNAL_DATA);
      }
      for (int f : new int[] {G_INPUT, G_OUTPUT, G_VALUE_INFO}) {
        g.getMessages(f).forEach(vi -> vi.getMessage(VI_TYPE));
      }
      for (Proto o : model.getMessages(M_OPSET_IMPORT)) {
        o.getLong(2, 0);
      }
    } catch (ModelException e) {
      throw new ModelException("not a valid ONNX model: " + e.getMessage(), e);
    }
    if (graph().getMessages(G_NODE).isEmpty()) {
      throw new ModelException("ONNX model has an empty graph");
    }
  }

  private void loadExternalData(Path baseDir) {
    for (Proto t : graph().getMessages(G_INITIALIZER)) {
      if (!TensorProtos.isExternal(t)) {
        continue;
      }
      String name = TensorProtos.name(t);
      if (baseDir == null) {
        throw new ModelException(
            "tensor " + name + " uses external data; load the model from its file");
      }
      Map<String, String> entries = externalEntries(t);
      String location = checkedLocation(t, entries);
      Path file = baseDir.resolve(location).normalize();
      if (!file.startsWith(baseDir.normalize())) {
        throw new ModelException("tensor " + name + ": external data outside the model directory");
      }
      long offset = parseLong(entries.getOrDefault("offset", "0"), name);
      long length;
      try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
        length =
            entries.containsKey("length")
                ? parseLong(entries.get("length"), name)
                : ch.size() - offset;
        if (offset < 0 || length < 0 || offset + length > ch.size()) {
          throw new ModelException(
              "tensor " + name + ": external data range runs past the end of " + location);
        }
        if (length > Integer.MAX_VALUE - 8) {
          throw new ModelException("tensor " + name + " is larger than 2 GiB");
        }
        ByteBuffer buf = ByteBuffer.allocate((int) length);
        while (buf.hasRemaining()) {
          if (ch.read(buf, offset + buf.position()) < 0) {
            throw new ModelException("tensor " + name + ": external data file is truncated");
          }
        }
        t.setBytes(TensorProtos.RAW_DATA, buf.array());
      } catch (NoSuchFileException e) {
        throw new ModelException("tensor " + name + ": external data file not found: " + file);
      } catch (IOException e) {
        throw new ModelException("tensor " + name + ": cannot read " + file + ": " + e, e);
      }
      t.clear(TensorProtos.EXTERNAL_DATA);
      t.clear(TensorProtos.DATA_LOCATION);
    }
  }

  /**
   * The external data files that the initializers of a model file refer to, as written in it
   * (relative to the model's directory), each once. Reads no tensor data.
   */
  public static List<String> externalDataLocations(byte[] modelBytes) {
    Proto p;
    try {
      p = Proto.parse(modelBytes);
    } catch (ModelException e) {
      throw new ModelException("not a valid ONNX model: " + e.getMessage(), e);
    }
    OnnxModel m = new OnnxModel(p);
    m.validate();
    java.util.Set<String> locations = new java.util.LinkedHashSet<>();
    for (Proto t : m.graph().getMessages(G_INITIALIZER)) {
      if (TensorProtos.isExternal(t)) {
        locations.add(checkedLocation(t, externalEntries(t)));
      }
    }
    return List.copyOf(locations);
  }

  private static Map<String, String> externalEntries(Proto tensor) {
    Map<String, String> entries = new LinkedHashMap<>();
    for (Proto e : tensor.getMessages(TensorProtos.EXTERNAL_DATA)) {
      entries.put(e.getString(1), e.getString(2));
    }
    return entries;
  }

  /** The location entry, which must be a relative path that stays inside the model directory. */
  private static String checkedLocation(Proto tensor, Map<String, String> entries) {
    String name = TensorProtos.name(tensor);
    String location = entries.get("location");
    if (location == null || location.isEmpty()) {
      throw new ModelException("tensor " + name + ": external data without a location");
    }
    Path rel = Path.of(location);
    if (rel.isAbsolute() || rel.normalize().startsWith("..")) {
      throw new ModelException("tensor " + name + ": external data outside the model directory");
    }
    return location;
  }

  private static long parseLong(String s, String tensor) {
    try {
      return Long.parseLong(s.trim());
    } catch (NumberFormatException e) {
      throw new ModelException("tensor " + tensor + ": bad external data number '" + s + "'");
    }
  }

  /** Whether {@link #toBytes()} can hold the whole model (under the 2 GiB protobuf limit). */
  public boolean fitsInMemory() {
    // The property lets tests drive the over-2-GiB code path with a small model.
    return initializerBytes() < Long.getLong("kiln.onnx.inlineLimit", PROTOBUF_LIMIT - (64L << 20));
  }

  /** The model bytes with every tensor inline; fails for models past the protobuf limit. */
  public byte[] toBytes() {
    if (!fitsInMemory()) {
      throw new ModelException("model is over 2 GiB; save it with external data");
    }
    return model.encode();
  }

  /** Saves inline, or with external data when asked or when the model is past the 2 GiB limit. */
  public void save(Path out) {
    save(out, !fitsInMemory());
  }

  /**
   * Saves the model; with {@code externalData}, tensors of {@value #EXTERNAL_THRESHOLD} bytes or
   * more go to {@code OUT.data} beside it, 4 KiB aligned, and the model file keeps references.
   */
  public void save(Path out, boolean externalData) {
    try {
      Path abs = out.toAbsolutePath();
      if (abs.getParent() != null) {
        Files.createDirectories(abs.getParent());
      }
      if (!externalData) {
        Files.write(abs, toBytes());
        return;
      }
      String dataName = abs.getFileName() + ".data";
      List<Proto> tensors = new ArrayList<>();
      try (OutputStream data = Files.newOutputStream(abs.resolveSibling(dataName))) {
        long offset = 0;
        for (Proto t : graph().getMessages(G_INITIALIZER)) {
          byte[] raw = TensorProtos.rawData(t);
          if (raw == null || raw.length < EXTERNAL_THRESHOLD) {
            tensors.add(t);
            continue;
          }
          long aligned = (offset + 4095) & ~4095L;
          data.write(new byte[(int) (aligned - offset)]);
          data.write(raw);
          tensors.add(externalReference(t, dataName, aligned, raw.length));
          offset = aligned + raw.length;
        }
      }
      Files.write(abs, encodeWithInitializers(tensors));
    } catch (IOException e) {
      throw new ModelException("cannot write model " + out + ": " + e.getMessage(), e);
    }
  }

  /** A copy of the TensorProto without its data, pointing at external data instead. */
  static Proto externalReference(Proto t, String location, long offset, long length) {
    Proto ref = new Proto();
    for (long d : TensorProtos.dims(t)) {
      ref.addLong(TensorProtos.DIMS, d);
    }
    ref.setLong(TensorProtos.DATA_TYPE, TensorProtos.dataType(t));
    ref.setString(TensorProtos.NAME, TensorProtos.name(t));
    String[][] kv = {
      {"location", location}, {"offset", Long.toString(offset)}, {"length", Long.toString(length)}
    };
    for (String[] e : kv) {
      Proto entry = ref.addMessage(TensorProtos.EXTERNAL_DATA);
      entry.setString(1, e[0]);
      entry.setString(2, e[1]);
    }
    ref.setLong(TensorProtos.DATA_LOCATION, TensorProtos.LOCATION_EXTERNAL);
    return ref;
  }

  /** The model bytes with the given initializer list in place of its own. */
  private byte[] encodeWithInitializers(List<Proto> tensors) {
    Proto g = graph();
    List<Proto> saved = g.getMessages(G_INITIALIZER);
    g.setMessages(G_INITIALIZER, tensors);
    try {
      return model.encode();
    } finally {
      g.setMessages(G_INITIALIZER, saved);
    }
  }

  long initializerBytes() {
    long n = 0;
    for (Proto t : graph().getMessages(G_INITIALIZER)) {
      byte[] raw = TensorProtos.rawData(t);
      n += raw == null ? 0 : raw.length;
    }
    return n;
  }

  // ---- graph access ----

  public Proto proto() {
    return model;
  }

  public Proto graph() {
    return model.getMessage(M_GRAPH);
  }

  /** The opset of the default ONNX domain. */
  public long opset() {
    for (Proto o : model.getMessages(M_OPSET_IMPORT)) {
      String domain = o.getString(1);
      if (domain.isEmpty() || domain.equals("ai.onnx")) {
        return o.getLong(2, 0);
      }
    }
    return 0;
  }

  public List<Node> nodes() {
    List<Node> out = new ArrayList<>();
    for (Proto p : graph().getMessages(G_NODE)) {
      out.add(new Node(p));
    }
    return out;
  }

  public void setNodes(List<Node> nodes) {
    List<Proto> protos = new ArrayList<>();
    for (Node n : nodes) {
      protos.add(n.proto());
    }
    graph().setMessages(G_NODE, protos);
  }

  /** Initializers by name, in graph order. */
  public Map<String, Proto> initializers() {
    Map<String, Proto> out = new LinkedHashMap<>();
    for (Proto t : graph().getMessages(G_INITIALIZER)) {
      out.put(TensorProtos.name(t), t);
    }
    return out;
  }

  public void addInitializer(Proto tensor) {
    graph().addMessage(G_INITIALIZER, tensor);
  }

  public void replaceInitializer(String name, Proto tensor) {
    List<Proto> list = new ArrayList<>();
    for (Proto t : graph().getMessages(G_INITIALIZER)) {
      list.add(TensorProtos.name(t).equals(name) ? tensor : t);
    }
    graph().setMessages(G_INITIALIZER, list);
  }

  public void removeInitializer(String name) {
    graph().removeMessages(G_INITIALIZER, t -> TensorProtos.name(t).equals(name));
  }

  /** Graph inputs that are not initializers. */
  public List<String> inputNames() {
    Map<String, Proto> inits = initializers();
    List<String> out = new ArrayList<>();
    for (Proto vi : graph().getMessages(G_INPUT)) {
      String n = vi.getString(VI_NAME);
      if (!inits.containsKey(n)) {
        out.add(n);
      }
    }
    return out;
  }

  public List<String> outputNames() {
    List<String> out = new ArrayList<>();
    for (Proto vi : graph().getMessages(G_OUTPUT)) {
      out.add(vi.getString(VI_NAME));
    }
    return out;
  }

  /** Input, output and value_info entries by tensor name. */
  public Map<String, Proto> valueInfos() {
    Map<String, Proto> out = new LinkedHashMap<>();
    for (int f : new int[] {G_VALUE_INFO, G_INPUT, G_OUTPUT}) {
      for (Proto vi : graph().getMessages(f)) {
        out.put(vi.getString(VI_NAME), vi);
      }
    }
    return out;
  }

  public List<Proto> graphInputs() {
    return graph().getMessages(G_INPUT);
  }

  public List<Proto> graphOutputs() {
    return graph().getMessages(G_OUTPUT);
  }

  /** The tensor name of a value info. */
  public static String name(Proto valueInfo) {
    return valueInfo.getString(VI_NAME);
  }

  /** The element type (TensorProto.DataType) of a value info, or 0 when unknown. */
  public static int elemType(Proto valueInfo) {
    Proto type = valueInfo.getMessage(VI_TYPE);
    Proto tt = type == null ? null : type.getMessage(TYPE_TENSOR);
    return tt == null ? 0 : (int) tt.getLong(TT_ELEM_TYPE, 0);
  }

  public static void setElemType(Proto valueInfo, int elemType) {
    valueInfo.mutableMessage(VI_TYPE).mutableMessage(TYPE_TENSOR).setLong(TT_ELEM_TYPE, elemType);
  }

  /** Dimensions of a value info; -1 for symbolic or unknown ones. Null when there is no shape. */
  public static long[] dims(Proto valueInfo) {
    Proto type = valueInfo.getMessage(VI_TYPE);
    Proto tt = type == null ? null : type.getMessage(TYPE_TENSOR);
    Proto shape = tt == null ? null : tt.getMessage(TT_SHAPE);
    if (shape == null) {
      return null;
    }
    List<Proto> ds = shape.getMessages(SHAPE_DIM);
    long[] out = new long[ds.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ds.get(i).has(DIM_VALUE) ? ds.get(i).getLong(DIM_VALUE, -1) : -1;
    }
    return out;
  }

  /** A value info with an element type and no shape. */
  public static Proto valueInfo(String name, int elemType) {
    Proto vi = new Proto();
    vi.setString(VI_NAME, name);
    setElemType(vi, elemType);
    return vi;
  }

  /**
   * A value info with an element type and a shape; a negative dimension is symbolic, named {@code
   * symbol + index}.
   */
  public static Proto valueInfo(String name, int elemType, String symbol, long... dims) {
    Proto vi = valueInfo(name, elemType);
    Proto shape = vi.mutableMessage(VI_TYPE).mutableMessage(TYPE_TENSOR).mutableMessage(TT_SHAPE);
    for (int i = 0; i < dims.length; i++) {
      Proto dim = shape.addMessage(SHAPE_DIM);
      if (dims[i] >= 0) {
        dim.setLong(DIM_VALUE, dims[i]);
      } else {
        dim.setString(DIM_PARAM, symbol + i);
      }
    }
    return vi;
  }

  public void addOutput(Proto valueInfo) {
    graph().addMessage(G_OUTPUT, valueInfo);
  }

  /** Replaces the graph's outputs. */
  public void setOutputs(List<Proto> valueInfos) {
    graph().setMessages(G_OUTPUT, valueInfos);
  }

  public void clearValueInfo() {
    graph().clear(G_VALUE_INFO);
  }

  // ---- native ONNX library ----

  /** Runs the ONNX checker; problems become {@link ModelException}. */
  public void check() {
    OnnxNative.check(nativeSkeleton());
  }

  /**
   * Runs ONNX shape inference and stores the inferred value infos in this model (replacing the old
   * ones). Returns this model.
   */
  public OnnxModel inferShapes() {
    Proto inferred = Proto.parse(OnnxNative.inferShapes(nativeSkeleton()));
    List<Proto> infos = inferred.getMessage(M_GRAPH).getMessages(G_VALUE_INFO);
    graph().setMessages(G_VALUE_INFO, infos);
    return this;
  }

  /**
   * Converts the default-domain opset with the ONNX version converter (for instance to 13, the
   * first opset with per-channel DequantizeLinear). Returns a new model; this one is unchanged.
   */
  public OnnxModel convertOpset(int target) {
    if (opset() == target) {
      return copy();
    }
    // The converter dereferences graph edges without checking them: only checked graphs go in.
    checkTopology();
    check();
    Map<String, Proto> original = initializers();
    OnnxModel converted = parse(OnnxNative.convertVersion(nativeSkeleton(), target));
    List<Proto> restored = new ArrayList<>();
    for (Proto t : converted.graph().getMessages(G_INITIALIZER)) {
      Proto o = original.get(TensorProtos.name(t));
      restored.add(o != null ? o.copy() : t);
    }
    converted.graph().setMessages(G_INITIALIZER, restored);
    return converted;
  }

  /**
   * Every node input must be a graph input, an initializer or the output of an earlier node, and
   * every graph output must be produced.
   */
  public void checkTopology() {
    java.util.Set<String> known = new java.util.HashSet<>(initializers().keySet());
    for (Proto vi : graphInputs()) {
      known.add(vi.getString(VI_NAME));
    }
    for (Node n : nodes()) {
      for (String in : n.inputs()) {
        if (!in.isEmpty() && !known.contains(in)) {
          throw new ModelException(
              "node " + n.name() + " (" + n.opType() + ") reads '" + in + "' before it is made");
        }
      }
      known.addAll(n.outputs());
    }
    for (String out : outputNames()) {
      if (!known.contains(out)) {
        throw new ModelException("graph output '" + out + "' is never produced");
      }
    }
  }

  /**
   * The bytes handed to the native library: large tensors shrink to 8 bytes (neither the checker
   * nor shape inference reads them), so the message stays small whatever the model size.
   */
  private byte[] nativeSkeleton() {
    List<Proto> tensors = new ArrayList<>();
    for (Proto t : graph().getMessages(G_INITIALIZER)) {
      byte[] raw = TensorProtos.rawData(t);
      if (raw != null && raw.length >= (1 << 16)) {
        Proto hollow = t.copy().clear(TensorProtos.RAW_DATA);
        tensors.add(hollow.setBytes(TensorProtos.RAW_DATA, new byte[8]));
      } else {
        tensors.add(t);
      }
    }
    return encodeWithInitializers(tensors);
  }
}
