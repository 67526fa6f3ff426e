package io.kiln.spark;

import io.kiln.InvalidInputException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * What the Kiln transformers share: the model path, device, batch size and error handling params,
 * and a transform that keeps every input column and appends the model's columns and {@code error}.
 * Rows go to the model in batches, partition by partition, on the executor's one model instance.
 */
public abstract class KilnTransformer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  /** Batches of rows per model call; rows are sorted by length within a call. */
  static final int SORTED_BATCHES_PER_CALL = 16;

  private final String uid;
  private final Param<String> modelPath;
  private final Param<String> device;
  private final IntParam batchSize;
  private final IntParam threads;
  private final BooleanParam failFast;
  private final Param<String> errorCol;

  protected KilnTransformer(String uid) {
    this.uid = uid;
    modelPath = new Param<>(this, "modelPath", "model file or directory, as executors see it");
    device = new Param<>(this, "device", "auto, cpu or cuda (cuda: the task's Spark GPU)");
    batchSize = new IntParam(this, "batchSize", "rows per model call", ParamValidators.gt(0));
    threads =
        new IntParam(
            this, "threads", "CPU threads per model call (0: all cores)", ParamValidators.gtEq(0));
    failFast = new BooleanParam(this, "failFast", "fail the job at the first bad row");
    errorCol = new Param<>(this, "errorCol", "column that says why a row has no result");
    setDefault(modelPath, "");
    setDefault(device, "auto");
    setDefault(batchSize, 32);
    setDefault(threads, 0);
    setDefault(failFast, false);
    setDefault(errorCol, "error");
  }

  @Override
  public String uid() {
    return uid;
  }

  public Param<String> modelPath() {
    return modelPath;
  }

  public Param<String> device() {
    return device;
  }

  public IntParam batchSize() {
    return batchSize;
  }

  public IntParam threads() {
    return threads;
  }

  public BooleanParam failFast() {
    return failFast;
  }

  public Param<String> errorCol() {
    return errorCol;
  }

  public String getModelPath() {
    return getOrDefault(modelPath);
  }

  public String getDevice() {
    return getOrDefault(device);
  }

  public int getBatchSize() {
    return (Integer) getOrDefault(batchSize);
  }

  public int getThreads() {
    return (Integer) getOrDefault(threads);
  }

  public boolean getFailFast() {
    return (Boolean) getOrDefault(failFast);
  }

  public String getErrorCol() {
    return getOrDefault(errorCol);
  }

  /** The columns this transformer adds before {@code error}, from the input schema. */
  protected abstract List<StructField> outputFields(StructType input);

  /** Checks the input columns this transformer reads. */
  protected abstract void checkInput(StructType input);

  /** How each partition's rows become output rows, shipped to the executors. */
  protected abstract MapPartitionsFunction<Row, Row> partitions(StructType input);

  /** Partitions handed to {@code model} in calls of {@link #rowsPerCall} rows. */
  protected MapPartitionsFunction<Row, Row> batched(RowModel model) {
    return new BatchedPartitions(model, rowsPerCall());
  }

  /**
   * Rows handed to the model at once: several batches, so that it can sort them by length and pad
   * little, as it does for a whole list in process.
   */
  protected int rowsPerCall() {
    return getBatchSize() * SORTED_BATCHES_PER_CALL;
  }

  /** The shared settings of every model: device, batch size, threads, fail fast. */
  protected ModelSettings settings() {
    return new ModelSettings(getDevice(), getBatchSize(), getThreads(), getFailFast());
  }

  @Override
  public StructType transformSchema(StructType schema) {
    checkInput(schema);
    List<StructField> fields = new ArrayList<>(Arrays.asList(schema.fields()));
    List<StructField> added = new ArrayList<>(outputFields(schema));
    added.add(DataTypes.createStructField(getErrorCol(), DataTypes.StringType, true));
    List<String> names = Arrays.asList(schema.fieldNames());
    for (StructField f : added) {
      if (names.contains(f.name())) {
        throw new InvalidInputException(
            "output column '" + f.name() + "' is already in the input; pick another name");
      }
    }
    fields.addAll(added);
    return DataTypes.createStructType(fields);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    StructType input = dataset.schema();
    StructType output = transformSchema(input);
    return dataset.toDF().mapPartitions(partitions(input), Encoders.row(output));
  }

  @Override
  public Transformer copy(ParamMap extra) {
    return defaultCopy(extra);
  }

  /** The index of a column that must exist, or a clear error naming the columns there are. */
  static int columnIndex(StructType schema, String name) {
    if (name == null || !Arrays.asList(schema.fieldNames()).contains(name)) {
      throw new InvalidInputException(
          "no input column '"
              + name
              + "'; the columns are "
              + String.join(", ", schema.fieldNames()));
    }
    return schema.fieldIndex(name);
  }
}
