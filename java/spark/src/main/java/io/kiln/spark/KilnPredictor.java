package io.kiln.spark;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.session.Session;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.StringArrayParam;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Any ONNX model, from array columns to array columns. Each input column holds one row's tensor
 * without the batch axis (a 1-D array of n is {@code [1, n]} to the model; nest arrays for more
 * dims), converted to the model input's dtype. Each output column holds the row's output flattened
 * row-major as {@code array<float>}. Rows run through {@link Session#inferBatch}, which pads rows
 * of similar length together.
 */
public final class KilnPredictor extends KilnTransformer {
  private static final long serialVersionUID = 1L;

  private final StringArrayParam inputCols =
      new StringArrayParam(this, "inputCols", "array columns fed to the model");
  private final StringArrayParam modelInputs =
      new StringArrayParam(this, "modelInputs", "model input per input column (default: same)");
  private final StringArrayParam outputNames =
      new StringArrayParam(this, "outputNames", "model outputs to keep");
  private final StringArrayParam outputCols =
      new StringArrayParam(this, "outputCols", "column per kept output (default: its name)");
  private final Param<String> precision = new Param<>(this, "precision", "fp32, fp16 or int8");

  public KilnPredictor() {
    this(Identifiable$.MODULE$.randomUID("kilnPredictor"));
  }

  public KilnPredictor(String uid) {
    super(uid);
    setDefault(modelInputs, new String[0]);
    setDefault(outputCols, new String[0]);
    setDefault(precision, "fp32");
  }

  public static MLReader<KilnPredictor> read() {
    return new DefaultParamsReader<>();
  }

  public static KilnPredictor load(String path) {
    return read().load(path);
  }

  public StringArrayParam inputCols() {
    return inputCols;
  }

  public StringArrayParam modelInputs() {
    return modelInputs;
  }

  public StringArrayParam outputNames() {
    return outputNames;
  }

  public StringArrayParam outputCols() {
    return outputCols;
  }

  public Param<String> precision() {
    return precision;
  }

  public KilnPredictor setInputCols(String... v) {
    set(inputCols, v);
    return this;
  }

  public KilnPredictor setModelInputs(String... v) {
    set(modelInputs, v);
    return this;
  }

  public KilnPredictor setOutputNames(String... v) {
    set(outputNames, v);
    return this;
  }

  public KilnPredictor setOutputCols(String... v) {
    set(outputCols, v);
    return this;
  }

  public KilnPredictor setPrecision(String v) {
    set(precision, v);
    return this;
  }

  public KilnPredictor setModelPath(String v) {
    set(modelPath(), v);
    return this;
  }

  public KilnPredictor setDevice(String v) {
    set(device(), v);
    return this;
  }

  public KilnPredictor setBatchSize(int v) {
    set(batchSize(), v);
    return this;
  }

  public KilnPredictor setThreads(int v) {
    set(threads(), v);
    return this;
  }

  public KilnPredictor setFailFast(boolean v) {
    set(failFast(), v);
    return this;
  }

  public KilnPredictor setErrorCol(String v) {
    set(errorCol(), v);
    return this;
  }

  private String[] names() {
    String[] given = getOrDefault(modelInputs);
    return given.length > 0 ? given : getOrDefault(inputCols);
  }

  private String[] columns() {
    String[] given = getOrDefault(outputCols);
    return given.length > 0 ? given : getOrDefault(outputNames);
  }

  @Override
  protected void checkInput(StructType input) {
    if (!isDefined(inputCols) || getOrDefault(inputCols).length == 0) {
      throw new InvalidInputException("KilnPredictor needs inputCols");
    }
    if (!isDefined(outputNames) || getOrDefault(outputNames).length == 0) {
      throw new InvalidInputException(
          "KilnPredictor needs outputNames (the model outputs to keep)");
    }
    if (names().length != getOrDefault(inputCols).length) {
      throw new InvalidInputException("modelInputs must name one model input per input column");
    }
    if (columns().length != getOrDefault(outputNames).length) {
      throw new InvalidInputException("outputCols must name one column per output name");
    }
    if (getModelPath().isEmpty()) {
      throw new InvalidInputException("KilnPredictor needs modelPath (an ONNX file or directory)");
    }
    for (String c : getOrDefault(inputCols)) {
      int at = columnIndex(input, c);
      if (!(input.fields()[at].dataType() instanceof ArrayType)) {
        throw new InvalidInputException("input column '" + c + "' must be an array column");
      }
    }
  }

  @Override
  protected List<StructField> outputFields(StructType input) {
    List<StructField> out = new ArrayList<>();
    for (String c : columns()) {
      out.add(
          DataTypes.createStructField(
              c, DataTypes.createArrayType(DataTypes.FloatType, false), true));
    }
    return out;
  }

  @Override
  protected MapPartitionsFunction<Row, Row> partitions(StructType input) {
    return batched(rowModel(input));
  }

  private RowModel rowModel(StructType input) {
    int[] at = Arrays.stream(getOrDefault(inputCols)).mapToInt(input::fieldIndex).toArray();
    PredictorSpec spec =
        new PredictorSpec(
            getModelPath(),
            getOrDefault(precision),
            names(),
            getOrDefault(outputNames),
            settings());
    return new PredictRows(spec, at);
  }

  /** Everything an executor needs to open the session. */
  record PredictorSpec(
      String modelPath,
      String precision,
      String[] inputNames,
      String[] outputNames,
      ModelSettings settings)
      implements Serializable {

    Session session() {
      return settings.openForTask(
          "session",
          modelPath,
          List.of(precision),
          on ->
              settings
                  .tune(
                      Session.builder(
                          io.kiln.embedding.ModelDirectory.onnxFile(Path.of(modelPath))),
                      on,
                      precision)
                  .build());
    }
  }

  /** Runs a batch's good rows through one inferBatch; a bad row gets its error. */
  private record PredictRows(PredictorSpec spec, int[] columns) implements RowModel {
    @Override
    public List<Object[]> apply(List<Row> rows) {
      Session session = spec.session();
      int width = spec.outputNames().length + 1;
      boolean failFast = spec.settings().failFast();
      Map<String, TensorInfo> inputs = new LinkedHashMap<>();
      for (TensorInfo info : session.inputs()) {
        inputs.put(info.name(), info);
      }
      Object[][] out = new Object[rows.size()][];
      List<Map<String, Tensor>> feeds = new ArrayList<>();
      List<Integer> at = new ArrayList<>();
      try {
        for (int i = 0; i < rows.size(); i++) {
          try {
            feeds.add(feed(rows.get(i), inputs));
            at.add(i);
          } catch (InvalidInputException e) {
            out[i] = RowErrors.failedOrThrow(width, e, failFast);
          }
        }
        if (!feeds.isEmpty()) {
          run(session, feeds, at, out, width, failFast);
        }
      } finally {
        feeds.forEach(f -> f.values().forEach(Tensor::close));
      }
      return List.of(out);
    }

    private Map<String, Tensor> feed(Row row, Map<String, TensorInfo> inputs) {
      Map<String, Tensor> feed = new LinkedHashMap<>();
      try {
        for (int k = 0; k < columns.length; k++) {
          String name = spec.inputNames()[k];
          TensorInfo info = inputs.get(name);
          if (info == null) {
            throw new InvalidInputException(
                "the model has no input '" + name + "'; it has " + inputs.keySet());
          }
          feed.put(name, RowTensors.toTensor(row.get(columns[k]), name, info.dtype(), info.rank()));
        }
        return feed;
      } catch (RuntimeException e) {
        feed.values().forEach(Tensor::close);
        throw e;
      }
    }

    private void run(
        Session session,
        List<Map<String, Tensor>> feeds,
        List<Integer> at,
        Object[][] out,
        int width,
        boolean failFast) {
      List<Session.Result> results;
      try {
        results = session.inferBatch(feeds);
      } catch (InvalidInputException batchFailed) {
        // One row spoiled the batch: run them one at a time to find which.
        for (int k = 0; k < feeds.size(); k++) {
          try (Session.Result r = session.infer(feeds.get(k))) {
            out[at.get(k)] = values(r, width);
          } catch (InvalidInputException e) {
            out[at.get(k)] = RowErrors.failedOrThrow(width, e, failFast);
          }
        }
        return;
      }
      for (int k = 0; k < results.size(); k++) {
        try (Session.Result r = results.get(k)) {
          out[at.get(k)] = values(r, width);
        }
      }
    }

    private Object[] values(Session.Result result, int width) {
      Object[] v = new Object[width];
      for (int k = 0; k < spec.outputNames().length; k++) {
        v[k] = RowTensors.toFloats(result.get(spec.outputNames()[k]));
      }
      return v;
    }
  }
}
