package io.kiln.spark;

import io.kiln.InvalidInputException;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SamplingParams;
import java.util.List;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.param.BooleanParam;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * Generation with a Llama-family model directory: a column of prompt text (tokenized with the
 * directory's tokenizer.json) or of token ids ({@code array<int>} or {@code array<bigint>}) to the
 * new tokens' ids and, when there is a tokenizer, their text. Each executor runs one {@link
 * io.kiln.execution.llm.LlmEngine}; a task keeps up to {@code batchSize} rows in flight (the next
 * submitted as the oldest finishes) and the engine's continuous batching merges them with the rows
 * of the executor's other tasks.
 */
public final class KilnGenerator extends KilnTransformer {
  private static final long serialVersionUID = 1L;

  private final Param<String> inputCol = new Param<>(this, "inputCol", "prompt text or ids");
  private final Param<String> outputCol = new Param<>(this, "outputCol", "generated text column");
  private final Param<String> idsCol = new Param<>(this, "idsCol", "generated ids column");
  private final IntParam maxNewTokens =
      new IntParam(this, "maxNewTokens", "tokens to generate at most", ParamValidators.gt(0));
  private final DoubleParam temperature =
      new DoubleParam(this, "temperature", "0 is greedy", ParamValidators.inRange(0, 100));
  private final IntParam topK = new IntParam(this, "topK", "0 disables", ParamValidators.gtEq(0));
  private final DoubleParam topP =
      new DoubleParam(this, "topP", "1 disables", ParamValidators.inRange(0, 1, false, true));
  private final DoubleParam repetitionPenalty =
      new DoubleParam(this, "repetitionPenalty", "1 disables", ParamValidators.gt(0));
  private final LongParam seed = new LongParam(this, "seed", "sampling seed");
  private final BooleanParam ignoreEos =
      new BooleanParam(this, "ignoreEos", "keep going past the end-of-sequence token");
  private final IntParam blockSize =
      new IntParam(this, "blockSize", "KV cache block size in tokens", ParamValidators.gt(0));
  private final IntParam kvBlocks =
      new IntParam(
          this,
          "kvBlocks",
          "KV blocks per executor (0: sized for batchSize rows)",
          ParamValidators.gtEq(0));
  private final Param<String> quantization =
      new Param<>(this, "quantization", "int8 or fp8 projection weights on load (\"\": as stored)");
  private final Param<String> dtype = new Param<>(this, "dtype", "cuda storage type: f16 or f32");
  private final DoubleParam kvUtilization =
      new DoubleParam(
          this,
          "kvUtilization",
          "cuda: share of the free device memory for the KV cache",
          ParamValidators.inRange(0, 1, false, true));
  private final IntParam maxModelLen =
      new IntParam(
          this,
          "maxModelLen",
          "cuda: longest sequence served (0: min(context, 4096))",
          ParamValidators.gtEq(0));

  public KilnGenerator() {
    this(Identifiable$.MODULE$.randomUID("kilnGenerator"));
  }

  public KilnGenerator(String uid) {
    super(uid);
    setDefault(inputCol, "prompt");
    setDefault(outputCol, "generated_text");
    setDefault(idsCol, "generated_ids");
    setDefault(maxNewTokens, 32);
    setDefault(temperature, 0.0);
    setDefault(topK, 0);
    setDefault(topP, 1.0);
    setDefault(repetitionPenalty, 1.0);
    setDefault(seed, 0L);
    setDefault(ignoreEos, false);
    setDefault(blockSize, 16);
    setDefault(kvBlocks, 0);
    setDefault(quantization, "");
    setDefault(dtype, "f16");
    setDefault(kvUtilization, 0.9);
    setDefault(maxModelLen, 0);
  }

  public static MLReader<KilnGenerator> read() {
    return new DefaultParamsReader<>();
  }

  public static KilnGenerator load(String path) {
    return read().load(path);
  }

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public Param<String> idsCol() {
    return idsCol;
  }

  public IntParam maxNewTokens() {
    return maxNewTokens;
  }

  public DoubleParam temperature() {
    return temperature;
  }

  public IntParam topK() {
    return topK;
  }

  public DoubleParam topP() {
    return topP;
  }

  public DoubleParam repetitionPenalty() {
    return repetitionPenalty;
  }

  public LongParam seed() {
    return seed;
  }

  public BooleanParam ignoreEos() {
    return ignoreEos;
  }

  public IntParam blockSize() {
    return blockSize;
  }

  public IntParam kvBlocks() {
    return kvBlocks;
  }

  public Param<String> quantization() {
    return quantization;
  }

  public Param<String> dtype() {
    return dtype;
  }

  public DoubleParam kvUtilization() {
    return kvUtilization;
  }

  public IntParam maxModelLen() {
    return maxModelLen;
  }

  public KilnGenerator setInputCol(String v) {
    set(inputCol, v);
    return this;
  }

  public KilnGenerator setOutputCol(String v) {
    set(outputCol, v);
    return this;
  }

  public KilnGenerator setIdsCol(String v) {
    set(idsCol, v);
    return this;
  }

  public KilnGenerator setMaxNewTokens(int v) {
    set(maxNewTokens, v);
    return this;
  }

  public KilnGenerator setTemperature(double v) {
    set(temperature, v);
    return this;
  }

  public KilnGenerator setTopK(int v) {
    set(topK, v);
    return this;
  }

  public KilnGenerator setTopP(double v) {
    set(topP, v);
    return this;
  }

  public KilnGenerator setRepetitionPenalty(double v) {
    set(repetitionPenalty, v);
    return this;
  }

  public KilnGenerator setSeed(long v) {
    set(seed, v);
    return this;
  }

  public KilnGenerator setIgnoreEos(boolean v) {
    set(ignoreEos, v);
    return this;
  }

  public KilnGenerator setBlockSize(int v) {
    set(blockSize, v);
    return this;
  }

  public KilnGenerator setKvBlocks(int v) {
    set(kvBlocks, v);
    return this;
  }

  public KilnGenerator setQuantization(String v) {
    set(quantization, v);
    return this;
  }

  public KilnGenerator setDtype(String v) {
    set(dtype, v);
    return this;
  }

  public KilnGenerator setKvUtilization(double v) {
    set(kvUtilization, v);
    return this;
  }

  public KilnGenerator setMaxModelLen(int v) {
    set(maxModelLen, v);
    return this;
  }

  public KilnGenerator setModelPath(String v) {
    set(modelPath(), v);
    return this;
  }

  public KilnGenerator setDevice(String v) {
    set(device(), v);
    return this;
  }

  public KilnGenerator setBatchSize(int v) {
    set(batchSize(), v);
    return this;
  }

  public KilnGenerator setThreads(int v) {
    set(threads(), v);
    return this;
  }

  public KilnGenerator setFailFast(boolean v) {
    set(failFast(), v);
    return this;
  }

  public KilnGenerator setErrorCol(String v) {
    set(errorCol(), v);
    return this;
  }

  /** The sampling these params give. */
  public SamplingParams samplingParams() {
    return SamplingParams.builder()
        .temperature((Double) getOrDefault(temperature))
        .topK((Integer) getOrDefault(topK))
        .topP((Double) getOrDefault(topP))
        .repetitionPenalty((Double) getOrDefault(repetitionPenalty))
        .seed((Long) getOrDefault(seed))
        .maxNewTokens((Integer) getOrDefault(maxNewTokens))
        .ignoreEos((Boolean) getOrDefault(ignoreEos))
        .build();
  }

  @Override
  protected void checkInput(StructType input) {
    if (getModelPath().isEmpty()) {
      throw new InvalidInputException("KilnGenerator needs modelPath (a model directory)");
    }
    DataType type = input.fields()[columnIndex(input, getOrDefault(inputCol))].dataType();
    boolean ids =
        type instanceof ArrayType a
            && (a.elementType().equals(DataTypes.IntegerType)
                || a.elementType().equals(DataTypes.LongType));
    if (!type.equals(DataTypes.StringType) && !ids) {
      throw new InvalidInputException(
          "input column '"
              + getOrDefault(inputCol)
              + "' must hold prompt text (string) or token ids (array<int> or array<bigint>)");
    }
  }

  @Override
  protected List<StructField> outputFields(StructType input) {
    return List.of(
        DataTypes.createStructField(getOrDefault(outputCol), DataTypes.StringType, true),
        DataTypes.createStructField(
            getOrDefault(idsCol), DataTypes.createArrayType(DataTypes.IntegerType, false), true));
  }

  /** A task keeps {@code batchSize} rows in flight; the engine schedules them itself. */
  @Override
  protected MapPartitionsFunction<Row, Row> partitions(StructType input) {
    RunnerOptions.Storage.parse(getOrDefault(dtype)); // a typo fails here, not on every executor
    GeneratorSpec spec =
        new GeneratorSpec(
            getModelPath(),
            (Integer) getOrDefault(blockSize),
            (Integer) getOrDefault(kvBlocks),
            getOrDefault(quantization),
            new LlmWorker.CudaSettings(
                getOrDefault(dtype),
                (Double) getOrDefault(kvUtilization),
                (Integer) getOrDefault(maxModelLen)),
            samplingParams(),
            settings());
    return new GenerationWindow(spec, input.fieldIndex(getOrDefault(inputCol)));
  }
}
