package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.CudaGraph;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.ModelSpec;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.SequenceChunks;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.safetensors.SafetensorsModel;
import io.kiln.util.CallGate;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;

/**
 * The Llama-family forward pass on a CUDA device: cuBLAS for the dense layers (or, as an option,
 * Kiln's skinny GEMM for steps of few tokens), Kiln's kernels for the rest, a paged KV pool in
 * device memory, and decode steps replayed as CUDA graphs (one per batch bucket). Owns every device
 * allocation it makes; {@link #close()} frees them all. Thread-confined like every {@link
 * ModelRunner}, though it may be opened on another thread.
 *
 * <p>The parts: {@link DeviceWeights} (weights, norm folding), {@link DeviceKvPool}, {@link
 * StepLayout} with {@link StepIo} (a step's inputs and outputs), {@link ForwardPass} (the layers)
 * and {@link DecodeGraphs}; this class sizes them at start-up and runs the steps.
 */
public final class GpuLlamaRunner implements ModelRunner {
  /** How long close waits for a step in flight. */
  static final java.time.Duration CLOSE_WAIT = java.time.Duration.ofSeconds(30);

  private static final org.slf4j.Logger LOG =
      org.slf4j.LoggerFactory.getLogger(GpuLlamaRunner.class);
  private static final int MAX_GROUP = 8;

  private final LlamaConfig config;
  private final GpuRunnerOptions options;
  private final ModelSpec spec;
  private final int[] buckets;
  private final int maxTokens;
  private final DeviceMemory memory = new DeviceMemory();
  private final GpuStartupReport.Builder report = new GpuStartupReport.Builder();

  private CudaModule module;
  private CUstream_st stream;
  private Cublas blas;
  private Kernels kernels;
  private DeviceKvPool kvPool;
  private StepIo stepIo;
  private ForwardPass forwardPass;
  private DecodeGraphs graphs;
  private DecodeGraphs verifyGraphs;
  private final int[] verifyBuckets; // batch buckets whose verification steps fit the buffers
  private long graphReplays; // steps replayed from a decode or verification graph
  private GpuStartupReport startup;
  // The runner is thread-confined, but close() may come from another thread: it must not free
  // device memory under a step in flight.
  private final CallGate gate = new CallGate("CUDA Llama runner");

  /** Loads a Hugging Face model directory onto device 0. */
  public static GpuLlamaRunner open(Path modelDirectory, GpuRunnerOptions options) {
    LlamaConfig config = LlamaConfig.load(modelDirectory);
    try (SafetensorsModel weights = SafetensorsModel.open(modelDirectory)) {
      return new GpuLlamaRunner(config, weights, options);
    }
  }

  /** Whether the kernels were built into this jar. */
  public static boolean kernelsBuilt() {
    return CudaModule.kernelsBuilt();
  }

  public GpuLlamaRunner(LlamaConfig config, SafetensorsModel weights, GpuRunnerOptions options) {
    this.config = config;
    this.options = options;
    checkSupported(config);
    int modelLen =
        options.maxModelLen() > 0
            ? options.maxModelLen()
            : Math.min(config.maxPositions(), GpuRunnerOptions.DEFAULT_MAX_MODEL_LEN);
    if (modelLen > config.maxPositions()) {
      throw new InvalidInputException(
          "max model length "
              + modelLen
              + " is longer than the model context of "
              + config.maxPositions());
    }
    this.spec = ModelSpec.of(config, modelLen);
    int maxRows = options.maxNumSeqs();
    this.maxTokens = Math.max(options.maxBatchedTokens(), maxRows);
    int maxBlocks = (modelLen + options.blockSize() - 1) / options.blockSize();
    this.buckets = DecodeBuckets.upTo(maxRows);
    StorageType storage = options.storage();
    try {
      long t0 = System.nanoTime();
      this.module = CudaModule.load();
      long baseline = Cuda.memInfo()[0];
      report.device(Cuda.deviceName(), Cuda.memInfo()[1], baseline);
      CUstream_st created = new CUstream_st();
      Cuda.check(cudart.cudaStreamCreate(created), "cudaStreamCreate");
      this.stream = created;
      this.blas = new Cublas(stream);
      this.kernels =
          new Kernels(
              module,
              storage,
              config.headDim(),
              options.programmaticLaunch() && Cuda.programmaticLaunchSupported());
      long before = Cuda.memInfo()[0];
      DeviceWeights deviceWeights =
          DeviceWeights.upload(
              config,
              weights,
              storage,
              options.fusedNorms(),
              options.int8LmHead(),
              spec.maxPositions(),
              memory,
              kernels,
              stream);
      report.weights(before - Cuda.memInfo()[0], (System.nanoTime() - t0) / 1e6);
      before = Cuda.memInfo()[0];
      // Verifying speculated tokens needs a logits row per verified position, not per sequence.
      int maxLogitRows = Math.min(maxTokens, maxRows * (1 + SpeculativeConfig.MAX_TOKENS));
      int width = options.speculativeTokens() + 1;
      this.verifyBuckets =
          options.speculativeTokens() == 0
              ? new int[0]
              : Arrays.stream(buckets)
                  .filter(b -> b * width <= Math.min(maxTokens, maxLogitRows))
                  .toArray();
      Activations activations =
          new Activations(config, storage, maxTokens, maxRows, maxLogitRows, memory);
      StepLayout layout =
          new StepLayout(maxTokens, maxRows, maxLogitRows, maxBlocks, options.blockSize());
      this.stepIo = new StepIo(layout, config.vocabSize(), memory, stream);
      report.activations(before - Cuda.memInfo()[0]);
      this.kvPool =
          new DeviceKvPool(
              memory, config.numLayers(), options.blockSize(), config.kvDim(), storage);
      this.forwardPass =
          new ForwardPass(
              config,
              options,
              kernels,
              blas,
              stream,
              deviceWeights,
              activations,
              kvPool,
              stepIo,
              maxBlocks);
      this.graphs = new DecodeGraphs(stream);
      this.verifyGraphs = new DecodeGraphs(stream);
      sizeAndCapture();
      this.startup = report.build();
    } catch (RuntimeException | Error e) {
      // After a device fault every later CUDA call fails too: keep the first error on top.
      try {
        close();
      } catch (RuntimeException closing) {
        e.addSuppressed(closing);
      }
      throw e;
    }
  }

  private static void checkSupported(LlamaConfig config) {
    int hd = config.headDim();
    if (hd != 32 && hd != 64 && hd != 128) {
      throw new InvalidInputException(
          "the CUDA runner supports head_dim 32, 64 and 128, not " + hd);
    }
    if (config.groupSize() > MAX_GROUP) {
      throw new InvalidInputException(
          "the CUDA runner supports up to "
              + MAX_GROUP
              + " query heads per KV head, not "
              + config.groupSize());
    }
  }

  // ---- set-up ---------------------------------------------------------------------------------

  /**
   * Sizes the KV pool from the memory left after weights, activations and the decode graphs. The
   * graphs are captured once against a two-block pool to measure them, then again against the real
   * pool (kernel arguments hold its address).
   */
  private void sizeAndCapture() {
    long perBlock = kvPool.bytesPerBlock();
    long graphBytes = 0;
    if (options.cudaGraphs() && options.kvBlocks() == 0) {
      kvPool.allocate(2);
      long before = Cuda.memInfo()[0];
      captureGraphs();
      graphBytes = Math.max(0, before - Cuda.memInfo()[0]);
      graphs.close();
      verifyGraphs.close();
      kvPool.free();
    }
    int blocks;
    if (options.kvBlocks() > 0) {
      blocks = options.kvBlocks();
    } else {
      long free = Cuda.memInfo()[0] - graphBytes;
      long budget = (long) (free * options.kvUtilization());
      blocks = (int) Math.min(kvPool.maxBlocksByIndex(), budget / perBlock);
      if (blocks < 2) {
        throw new BackendException(
            "no device memory left for the KV cache: "
                + free
                + " bytes free after weights, activations and graphs, "
                + perBlock
                + " bytes per block");
      }
    }
    kvPool.allocate(blocks);
    long t0 = System.nanoTime();
    long before = Cuda.memInfo()[0];
    if (options.cudaGraphs() && graphs.failure() == null && verifyGraphs.failure() == null) {
      captureGraphs();
    }
    long measured = Math.max(0, before - Cuda.memInfo()[0]);
    report.kv(blocks, options.blockSize(), perBlock * blocks);
    report.graphs(
        graphs.size() + verifyGraphs.size(),
        Math.max(graphBytes, measured),
        (System.nanoTime() - t0) / 1e6);
  }

  /**
   * One decode graph per bucket, captured on empty decode steps; with speculative tokens, one
   * verification graph per bucket that fits too.
   */
  private void captureGraphs() {
    graphs.capture(
        buckets,
        new DecodeGraphs.DecodeStep() {
          @Override
          public void prepare(int bucket) {
            stepIo.layout.fillDecode(List.of(), bucket);
            stepIo.uploadInputs();
          }

          @Override
          public void enqueue(int bucket) {
            forwardPass.enqueue(bucket, bucket, forwardPass.splitsFor(bucket));
          }

          @Override
          public void sync() {
            GpuLlamaRunner.this.sync();
          }
        });
    int k = options.speculativeTokens();
    if (verifyBuckets.length == 0) {
      return;
    }
    verifyGraphs.capture(
        verifyBuckets,
        new DecodeGraphs.DecodeStep() {
          @Override
          public void prepare(int bucket) {
            stepIo.layout.fillVerify(List.of(), bucket, k);
            stepIo.uploadInputs();
          }

          @Override
          public void enqueue(int bucket) {
            int rows = bucket * (k + 1);
            forwardPass.enqueue(rows, rows, forwardPass.splitsFor(rows));
          }

          @Override
          public void sync() {
            GpuLlamaRunner.this.sync();
          }
        });
  }

  // ---- the step -------------------------------------------------------------------------------

  @Override
  public ModelSpec spec() {
    return spec;
  }

  @Override
  public KvPoolSpec kvPool() {
    return kvPool.spec();
  }

  /** Bytes of the device buffers this runner holds: weights, activations, step I/O, KV pool. */
  long deviceBytes() {
    return memory.deviceBytes();
  }

  /** What start-up measured: memory of weights, activations, graphs and the KV pool. */
  public GpuStartupReport startupReport() {
    return startup;
  }

  public int[] decodeBuckets() {
    return buckets.clone();
  }

  @Override
  public float[][] forward(List<SequenceChunk> batch) {
    gate.enter();
    try {
      enqueue(batch, true);
      return stepIo.downloadLogits(batch, forwardPass.logits(), config.vocabSize());
    } finally {
      gate.exit();
    }
  }

  /**
   * The greedy tokens come from an argmax on the device: only ints travel back. The skinny LM head
   * leaves it in the step's greedy keys; otherwise the argmax kernel runs after the step.
   */
  @Override
  public int[][] forwardGreedy(List<SequenceChunk> batch) {
    gate.enter();
    try {
      enqueue(batch, true);
      boolean keys = forwardPass.skinny(stepIo.layout.numLogitRows);
      return stepIo.downloadGreedy(batch, keys, kernels, forwardPass.logits(), config.vocabSize());
    } finally {
      gate.exit();
    }
  }

  /** Runs the step eagerly, without the graph, even for a decode batch (for tests). */
  float[][] forwardEager(List<SequenceChunk> batch) {
    gate.enter();
    try {
      enqueue(batch, false);
      return stepIo.downloadLogits(batch, forwardPass.logits(), config.vocabSize());
    } finally {
      gate.exit();
    }
  }

  /** Uploads the step's inputs and enqueues its compute: a graph replay for decode batches. */
  private void enqueue(List<SequenceChunk> batch, boolean useGraph) {
    SequenceChunks.validate(batch, spec, kvPool.spec());
    Cuda.makeCurrent();
    int bucket = isDecode(batch) ? DecodeBuckets.bucketFor(buckets, batch.size()) : -1;
    int verifyBucket = bucket > 0 ? -1 : verifyBucketFor(batch);
    StepLayout layout = stepIo.layout;
    if (verifyBucket > 0) {
      int k = options.speculativeTokens();
      layout.fillVerify(batch, verifyBucket, k);
      stepIo.uploadInputs();
      CudaGraph graph = useGraph ? verifyGraphs.get(verifyBucket) : null;
      if (graph != null) {
        graph.launch();
        graphReplays++;
      } else {
        forwardPass.enqueue(
            layout.numTokens, layout.numLogitRows, forwardPass.splitsFor(layout.numTokens));
      }
    } else if (bucket > 0) {
      layout.fillDecode(batch, bucket);
      stepIo.uploadInputs();
      CudaGraph graph = useGraph ? graphs.get(bucket) : null;
      if (graph != null) {
        graph.launch();
        graphReplays++;
      } else {
        forwardPass.enqueue(bucket, bucket, forwardPass.splitsFor(bucket));
      }
    } else {
      layout.fillEager(batch);
      stepIo.uploadInputs();
      forwardPass.enqueue(
          layout.numTokens, layout.numLogitRows, forwardPass.splitsFor(layout.numTokens));
    }
  }

  /**
   * The verification bucket of a step whose every chunk carries at most K + 1 positions (a
   * verification, a draft's first round, a short prompt), or -1.
   */
  private int verifyBucketFor(List<SequenceChunk> batch) {
    int width = options.speculativeTokens() + 1;
    if (width == 1) {
      return -1;
    }
    for (SequenceChunk chunk : batch) {
      if (chunk.tokens().length > width) {
        return -1;
      }
    }
    return DecodeBuckets.bucketFor(verifyBuckets, batch.size());
  }

  private static boolean isDecode(List<SequenceChunk> batch) {
    for (SequenceChunk chunk : batch) {
      if (chunk.tokens().length != 1 || !chunk.wantLogits()) {
        return false;
      }
    }
    return true;
  }

  private void sync() {
    Cuda.check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  // ---- what the benches read ------------------------------------------------------------------

  /** Steps replayed from a captured graph so far. */
  long graphReplays() {
    return graphReplays;
  }

  /** Which GEMM a step of {@code tokens} rows uses: "skinny" or "cublas" (for reports). */
  public String gemmPath(int tokens) {
    return forwardPass.skinny(tokens) ? "skinny" : "cublas";
  }

  /** Most tokens one step may carry. */
  public int maxTokensPerStep() {
    return maxTokens;
  }

  /** Bytes of K and V one position holds over all layers. */
  public long kvBytesPerPosition() {
    return 2L * config.numLayers() * config.kvDim() * options.storage().bytes;
  }

  /** Weight bytes a decode step reads: every matrix once, the norms, one embedding row. */
  public long weightBytesPerDecodeStep() {
    long hidden = config.hiddenSize();
    long qDim = config.queryDim();
    long qkvDim = qDim + 2L * config.kvDim();
    long ff = config.intermediateSize();
    long bytes = options.storage().bytes;
    long perLayer =
        (qkvDim * hidden + hidden * qDim + 2L * ff * hidden + hidden * ff) * bytes + 8 * hidden;
    return config.numLayers() * perLayer
        + (long) config.vocabSize() * hidden * bytes
        + 4 * hidden
        + hidden * bytes;
  }

  /**
   * The graph of the last decode step's bucket (owned by the runner: do not close it), or null
   * where that step ran without one. Replaying it rewrites the same KV slots with the same values.
   */
  public CudaGraph lastDecodeGraph() {
    Cuda.makeCurrent();
    return graphs.get(stepIo.layout.numTokens);
  }

  /**
   * Only {@code stages} of the last step (a decode step, a verification or an eager step), captured
   * now as a graph the caller closes: where the time of that step goes. The stages left out do not
   * run, so their outputs are stale; a stage alone may write the K/V slots of that step again.
   */
  public CudaGraph captureLastStepStages(Set<DecodeStage> stages) {
    Cuda.makeCurrent();
    int tokens = stepIo.layout.numTokens;
    int rows = stepIo.layout.numLogitRows;
    return CudaGraph.capture(
        stream, () -> forwardPass.enqueue(tokens, rows, forwardPass.splitsFor(tokens), stages));
  }

  @Override
  public void close() {
    if (!gate.beginClose()) {
      return;
    }
    if (!gate.awaitIdle(CLOSE_WAIT)) {
      LOG.warn("a step is still inside the CUDA Llama runner; its device memory is not freed");
      return;
    }
    if (module == null) {
      return;
    }
    Cuda.makeCurrent();
    if (stream != null) {
      cudart.cudaStreamSynchronize(stream);
    }
    if (graphs != null) {
      graphs.close();
    }
    if (verifyGraphs != null) {
      verifyGraphs.close();
    }
    if (blas != null) {
      blas.close();
    }
    memory.close();
    if (stream != null) {
      Cuda.check(cudart.cudaStreamDestroy(stream), "cudaStreamDestroy");
    }
    module.close();
  }
}
