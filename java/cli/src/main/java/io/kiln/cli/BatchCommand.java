package io.kiln.cli;

import io.kiln.Backend;
import io.kiln.TensorInfo;
import io.kiln.embedding.ModelDirectory;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.session.Session;
import io.kiln.spark.KilnEmbedder;
import io.kiln.spark.KilnGenerator;
import io.kiln.spark.KilnPredictor;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln batch embed|run|generate}: a table of rows through a model on Spark. */
@Command(
    name = "batch",
    description = {
      "Run a model over a table of rows on Spark (local[N] in this JVM, or a spark:// cluster).",
      "Output rows keep every input column and add the results and an error column: a bad row"
          + " (null or empty text, a prompt longer than the context, an input of the wrong"
          + " shape) gets its error there instead of failing the job, unless --fail-fast."
    },
    subcommands = {BatchCommand.Embed.class, BatchCommand.Run.class, BatchCommand.Generate.class})
final class BatchCommand implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw OptionRanges.usage(spec, "give a batch command: embed, run or generate");
  }

  /** Backend and CUDA graph choices are the executors' own (auto): other values are refused. */
  private static void checkSessionOptions(CommandLine.Model.CommandSpec spec, SessionOptions o) {
    o.checkRanges();
    if (o.backend != Backend.AUTO) {
      throw OptionRanges.usage(
          spec, "kiln batch picks the backend on each executor: drop --backend");
    }
  }

  @Command(
      name = "embed",
      mixinStandardHelpOptions = true,
      description = "Sentence embeddings of a text column (default: text) into embedding.")
  static final class Embed implements Callable<Integer> {
    @Mixin BatchOptions io;
    @Mixin EmbeddingModelOptions embeddingModel;
    @Mixin SessionOptions options;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
      checkSessionOptions(spec, options);
      // Checks the embedding flags as kiln embed does; the executors open the model.
      embeddingModel.embeddingOptions(spec, options);
      EmbeddingModelOptions m = embeddingModel;
      KilnEmbedder embedder =
          new KilnEmbedder()
              .setInputCol(io.column(spec, "text"))
              .setModelPath(m.model == null ? "" : m.model.toAbsolutePath().toString())
              .setTokenizerPath(m.tokenizer == null ? "" : m.tokenizer.toAbsolutePath().toString())
              .setPooling(m.pooling == null ? "" : m.pooling)
              .setPrompt(m.prompt == null ? "" : m.prompt)
              .setPromptName(m.promptName == null ? "" : m.promptName)
              .setDimensions(m.dimensions == null ? 0 : m.dimensions)
              .setPrecision(options.precision.name())
              .setDevice(options.device.label())
              .setBatchSize(options.maxBatch)
              .setThreads(options.threads == null ? 0 : options.threads)
              .setFailFast(io.failFast);
      if (m.normalize != null) {
        embedder.setNormalize(m.normalize);
      }
      new BatchJob(spec, io).run(rows -> embedder);
      return ExitCodes.OK;
    }
  }

  @Command(
      name = "run",
      mixinStandardHelpOptions = true,
      description = {
        "Any ONNX model, from array columns (one per model input, --column) to one float array"
            + " column per output, flattened row-major without the batch axis."
      })
  static final class Run implements Callable<Integer> {
    @Parameters(
        index = "0",
        paramLabel = "MODEL",
        description = "ONNX file or model directory (onnx/model.onnx or model.onnx)")
    java.nio.file.Path model;

    @Option(
        names = "--model-inputs",
        split = ",",
        paramLabel = "NAME",
        description = "the model input each --column feeds (default: the column names)")
    List<String> modelInputs;

    @Option(
        names = "--outputs",
        split = ",",
        paramLabel = "NAME",
        description = "model outputs to keep (default: all)")
    List<String> outputs;

    @Mixin BatchOptions io;
    @Mixin SessionOptions options;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
      checkSessionOptions(spec, options);
      List<String> columns = io.columns;
      if (columns == null || columns.isEmpty()) {
        throw OptionRanges.usage(spec, "kiln batch run needs --column, one per model input");
      }
      List<String> kept = outputs;
      if (kept == null || kept.isEmpty()) {
        // The driver reads the output names; the executors open their own sessions.
        try (Session s = Session.builder(ModelDirectory.onnxFile(model)).build()) {
          kept = s.outputs().stream().map(TensorInfo::name).toList();
        }
      }
      KilnPredictor predictor =
          new KilnPredictor()
              .setModelPath(model.toAbsolutePath().toString())
              .setInputCols(columns.toArray(new String[0]))
              .setModelInputs((modelInputs == null ? columns : modelInputs).toArray(new String[0]))
              .setOutputNames(kept.toArray(new String[0]))
              .setPrecision(options.precision.name())
              .setDevice(options.device.label())
              .setBatchSize(options.maxBatch)
              .setThreads(options.threads == null ? 0 : options.threads)
              .setFailFast(io.failFast);
      new BatchJob(spec, io).run(rows -> predictor);
      return ExitCodes.OK;
    }
  }

  @Command(
      name = "generate",
      mixinStandardHelpOptions = true,
      description = {
        "Generate from a column of prompt text or token ids (default: prompt) into"
            + " generated_text and generated_ids; temperature 0 (the default) is greedy.",
        "Each executor runs one engine; up to --max-num-seqs rows of a task are in flight at once"
            + " and continuous batching merges them with the other tasks' rows."
      })
  static final class Generate implements Callable<Integer> {
    @Mixin LlmModelOptions modelOptions;
    @Mixin SamplingOptions sampling;
    @Mixin BatchOptions io;

    @Option(
        names = "--max-num-seqs",
        defaultValue = "32",
        description = "rows each task keeps in flight (default: 32)")
    int maxNumSeqs;

    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
      sampling.params(spec);
      modelOptions.checkRanges(spec);
      OptionRanges.between(spec, "--max-num-seqs", maxNumSeqs, 1, 4096);
      // Launch-path switches are for benchmarking one runner; executors keep the defaults.
      if (modelOptions.noCudaGraphs
          || !modelOptions.skinnyGemm
          || !modelOptions.programmaticLaunch
          || !modelOptions.fusedNorms) {
        throw OptionRanges.usage(
            spec,
            "kiln batch generate runs with every CUDA launch path on; --no-cuda-graphs,"
                + " --no-skinny-gemm, --no-programmatic-launch and --no-fused-norms are for"
                + " kiln generate and bench-llm");
      }
      if (modelOptions.int8LmHead() == RunnerOptions.Int8LmHead.ON) {
        throw OptionRanges.usage(
            spec,
            "kiln batch generate keeps the LM head as the checkpoint has it; --int8-lm-head on"
                + " is for kiln generate, bench-llm and serve");
      }
      KilnGenerator generator =
          new KilnGenerator()
              .setInputCol(io.column(spec, "prompt"))
              .setModelPath(modelOptions.model.toAbsolutePath().toString())
              .setDevice(modelOptions.cuda() ? "cuda" : "cpu")
              .setThreads(modelOptions.threads == null ? 0 : modelOptions.threads)
              .setBlockSize(modelOptions.blockSize)
              .setQuantization(modelOptions.quantization == null ? "" : modelOptions.quantization)
              .setDtype(modelOptions.dtype)
              .setKvUtilization(modelOptions.kvUtilization)
              .setMaxModelLen(modelOptions.maxModelLen)
              .setBatchSize(maxNumSeqs)
              .setMaxNewTokens(sampling.maxNewTokens)
              .setTemperature(sampling.temperature)
              .setTopK(sampling.topK)
              .setTopP(sampling.topP)
              .setRepetitionPenalty(sampling.repetitionPenalty)
              .setSeed(sampling.seed)
              .setIgnoreEos(sampling.ignoreEos)
              .setFailFast(io.failFast);
      new BatchJob(spec, io).run(rows -> generator);
      return ExitCodes.OK;
    }
  }
}
