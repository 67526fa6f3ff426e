package io.kiln.spark;

import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.embedding.EmbeddingOptions;
import io.kiln.embedding.Pooling;
import io.kiln.embedding.TextEmbedder;
import io.kiln.session.Session;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * A text column to its sentence embedding ({@code array<float>}): a sentence-transformers
 * directory, an encoder ONNX with its tokenizer, or the embedded all-MiniLM-L6-v2 when no model
 * path is set. Pooled and normalized as the model says unless the params say otherwise, like {@code
 * kiln embed}.
 */
public final class KilnEmbedder extends KilnTransformer {
  private static final long serialVersionUID = 1L;

  private final Param<String> inputCol = new Param<>(this, "inputCol", "text column");
  private final Param<String> outputCol = new Param<>(this, "outputCol", "embedding column");
  private final Param<String> tokenizerPath =
      new Param<>(this, "tokenizerPath", "tokenizer.json of an ONNX file given as model path");
  private final Param<String> pooling =
      new Param<>(this, "pooling", "cls, mean, max, mean-sqrt-len or last-token (\"\": model's)");
  private final BooleanParam normalize =
      new BooleanParam(this, "normalize", "scale to unit length (unset: the model's)");
  private final Param<String> prompt = new Param<>(this, "prompt", "text put before every input");
  private final Param<String> promptName =
      new Param<>(this, "promptName", "a prompt named in config_sentence_transformers.json");
  private final IntParam dimensions =
      new IntParam(this, "dimensions", "keep the first N (0: all)", ParamValidators.gtEq(0));
  private final Param<String> precision = new Param<>(this, "precision", "fp32, fp16 or int8");

  public KilnEmbedder() {
    this(Identifiable$.MODULE$.randomUID("kilnEmbedder"));
  }

  public KilnEmbedder(String uid) {
    super(uid);
    setDefault(inputCol, "text");
    setDefault(outputCol, "embedding");
    setDefault(tokenizerPath, "");
    setDefault(pooling, "");
    setDefault(prompt, "");
    setDefault(promptName, "");
    setDefault(dimensions, 0);
    setDefault(precision, "fp32");
  }

  public static MLReader<KilnEmbedder> read() {
    return new DefaultParamsReader<>();
  }

  public static KilnEmbedder load(String path) {
    return read().load(path);
  }

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public Param<String> tokenizerPath() {
    return tokenizerPath;
  }

  public Param<String> pooling() {
    return pooling;
  }

  public BooleanParam normalize() {
    return normalize;
  }

  public Param<String> prompt() {
    return prompt;
  }

  public Param<String> promptName() {
    return promptName;
  }

  public IntParam dimensions() {
    return dimensions;
  }

  public Param<String> precision() {
    return precision;
  }

  public KilnEmbedder setInputCol(String v) {
    set(inputCol, v);
    return this;
  }

  public KilnEmbedder setOutputCol(String v) {
    set(outputCol, v);
    return this;
  }

  public KilnEmbedder setModelPath(String v) {
    set(modelPath(), v);
    return this;
  }

  public KilnEmbedder setTokenizerPath(String v) {
    set(tokenizerPath, v);
    return this;
  }

  public KilnEmbedder setPooling(String v) {
    set(pooling, v);
    return this;
  }

  public KilnEmbedder setNormalize(boolean v) {
    set(normalize, v);
    return this;
  }

  public KilnEmbedder setPrompt(String v) {
    set(prompt, v);
    return this;
  }

  public KilnEmbedder setPromptName(String v) {
    set(promptName, v);
    return this;
  }

  public KilnEmbedder setDimensions(int v) {
    set(dimensions, v);
    return this;
  }

  public KilnEmbedder setPrecision(String v) {
    set(precision, v);
    return this;
  }

  public KilnEmbedder setDevice(String v) {
    set(device(), v);
    return this;
  }

  public KilnEmbedder setBatchSize(int v) {
    set(batchSize(), v);
    return this;
  }

  public KilnEmbedder setThreads(int v) {
    set(threads(), v);
    return this;
  }

  public KilnEmbedder setFailFast(boolean v) {
    set(failFast(), v);
    return this;
  }

  public KilnEmbedder setErrorCol(String v) {
    set(errorCol(), v);
    return this;
  }

  @Override
  protected void checkInput(StructType input) {
    int at = columnIndex(input, getOrDefault(inputCol));
    if (!input.fields()[at].dataType().equals(DataTypes.StringType)) {
      throw new InvalidInputException(
          "input column '" + getOrDefault(inputCol) + "' must be a string column");
    }
  }

  @Override
  protected List<StructField> outputFields(StructType input) {
    return List.of(
        DataTypes.createStructField(
            getOrDefault(outputCol), DataTypes.createArrayType(DataTypes.FloatType, false), true));
  }

  @Override
  protected MapPartitionsFunction<Row, Row> partitions(StructType input) {
    return batched(rowModel(input));
  }

  private RowModel rowModel(StructType input) {
    EmbedderSpec spec =
        new EmbedderSpec(
            getModelPath(),
            getOrDefault(tokenizerPath),
            getOrDefault(pooling),
            isDefined(normalize) ? (Boolean) getOrDefault(normalize) : null,
            getOrDefault(prompt),
            getOrDefault(promptName),
            (Integer) getOrDefault(dimensions),
            getOrDefault(precision),
            settings());
    return new EmbedRows(spec, input.fieldIndex(getOrDefault(inputCol)));
  }

  /** Everything an executor needs to open the embedder. */
  record EmbedderSpec(
      String modelPath,
      String tokenizerPath,
      String pooling,
      Boolean normalize,
      String prompt,
      String promptName,
      int dimensions,
      String precision,
      ModelSettings settings)
      implements Serializable {

    /** This executor's embedder for the running task's device, opened on first use. */
    TextEmbedder embedder() {
      return settings.openForTask(
          "embedder",
          modelPath.isEmpty() ? "all-MiniLM-L6-v2 (embedded)" : modelPath,
          List.of(
              tokenizerPath,
              pooling,
              String.valueOf(normalize),
              prompt,
              promptName,
              Integer.toString(dimensions),
              precision),
          this::open);
    }

    private TextEmbedder open(DeviceAssignment on) {
      UnaryOperator<Session.Builder> tune = b -> settings.tune(b, on, precision);
      EmbeddingOptions options = options();
      if (modelPath.isEmpty()) {
        return TextEmbedder.defaultModel(tune, options);
      }
      Path model = Path.of(modelPath);
      if (Files.isDirectory(model)) {
        return TextEmbedder.open(model, options, tune);
      }
      if (tokenizerPath.isEmpty()) {
        throw new InvalidInputException("a model file needs tokenizerPath (its tokenizer.json)");
      }
      return TextEmbedder.open(
          tune.apply(Session.builder(model)),
          Path.of(tokenizerPath),
          model.toAbsolutePath().getParent(),
          options);
    }

    private EmbeddingOptions options() {
      // The session holds at most batchSize rows; within it the embedder takes its preferred runs.
      EmbeddingOptions o = EmbeddingOptions.defaults();
      if (!pooling.isEmpty()) {
        o = o.withPooling(Pooling.fromName(pooling));
      }
      return o.withNormalize(normalize)
          .withPrompt(prompt.isEmpty() ? null : prompt)
          .withPromptName(promptName.isEmpty() ? null : promptName)
          .withDimensions(dimensions);
    }
  }

  /** Embeds a batch's texts in one call; a null or empty text gets an error instead. */
  private record EmbedRows(EmbedderSpec spec, int column) implements RowModel {
    private static final int WIDTH = 2;

    @Override
    public List<Object[]> apply(List<Row> rows) {
      boolean failFast = spec.settings().failFast();
      Object[][] out = new Object[rows.size()][];
      List<String> texts = new ArrayList<>();
      List<Integer> at = new ArrayList<>();
      for (int i = 0; i < rows.size(); i++) {
        String text = rows.get(i).isNullAt(column) ? null : rows.get(i).getString(column);
        if (text == null || text.isBlank()) {
          out[i] = RowErrors.invalid(WIDTH, text == null ? "null text" : "empty text", failFast);
        } else {
          texts.add(text);
          at.add(i);
        }
      }
      if (!texts.isEmpty()) {
        TextEmbedder embedder = spec.embedder();
        try {
          float[][] vectors = embedder.embed(texts);
          for (int k = 0; k < vectors.length; k++) {
            out[at.get(k)] = new Object[] {vectors[k], null};
          }
        } catch (KilnException batchFailed) {
          // One text spoiled the batch: embed them one at a time to find which.
          for (int k = 0; k < texts.size(); k++) {
            try {
              out[at.get(k)] = new Object[] {embedder.embed(List.of(texts.get(k)))[0], null};
            } catch (KilnException e) {
              out[at.get(k)] = RowErrors.failedOrThrow(WIDTH, e, failFast);
            }
          }
        }
      }
      return List.of(out);
    }
  }
}
