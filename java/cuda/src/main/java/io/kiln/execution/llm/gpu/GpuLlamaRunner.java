package io.kiln.execution.llm.gpu;

import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.kiln.cuda.Cuda;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.ModelSpec;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.SequenceChunks;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.safetensors.SafetensorsModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.bytedeco.cuda.cudart.CUgraphExec_st;
import org.bytedeco.cuda.cudart.CUgraph_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * The Llama-family forward pass on a CUDA device: cuBLAS for the dense layers (or, as an option,
 * Kiln's skinny GEMM for steps of few tokens), Kiln's kernels for the rest, a paged KV pool in
 * device memory, and decode steps replayed as CUDA graphs (one per batch bucket). Owns every device
 * allocation it makes; {@link #close()} frees them all. Thread-confined like every {@link
 * ModelRunner}, though it may be opened on another thread.
 */
public final class GpuLlamaRunner implements ModelRunner {
  private static final int MAX_SPLITS = 16;
  private static final int MAX_GROUP = 8;

  private final LlamaConfig c;
  private final GpuRunnerOptions options;
  private final StorageType st;
  private final ModelSpec spec;
  private final List<DeviceBuffer> allocations = new ArrayList<>();
  private final List<Pointer> pinned = new ArrayList<>();
  private final Map<Integer, CUgraphExec_st> graphs = new LinkedHashMap<>();
  private final int[] buckets;
  private final int maxTokens;
  private final int maxRows;
  private final int maxBlocks;
  private final int qDim;
  private final int kvDim;
  private final int qkvDim;
  private final int ff;

  private CudaModule module;
  private CUstream_st stream;
  private Cublas blas;
  private Kernels k;

  // Weights (norms always fp32; with fused norms the layer norms are ones, their weights folded
  // into the products that read them).
  private DeviceBuffer embedding;
  private DeviceBuffer unitNorm;
  private DeviceBuffer lmHead;
  private DeviceBuffer finalNorm;
  private Layer[] layers;
  private DeviceBuffer ropeCos;
  private DeviceBuffer ropeSin;

  // Activations.
  private DeviceBuffer x;
  private DeviceBuffer xb;
  private DeviceBuffer qkv;
  private DeviceBuffer att;
  private DeviceBuffer proj;
  private DeviceBuffer gateUp;
  private DeviceBuffer mlp;
  private DeviceBuffer lastX;
  private DeviceBuffer lastNormed;
  private DeviceBuffer logits;
  private DeviceBuffer partAcc;
  private DeviceBuffer partMl;
  private DeviceBuffer meta;
  private StepLayout layout;
  private IntPointer hostMeta;
  private FloatPointer hostLogits;
  private DeviceBuffer greedy;
  private IntPointer hostGreedy;
  private LongPointer hostGreedyKeys;

  // KV pool: per layer K then V, each [numBlocks][blockSize][kvDim].
  private DeviceBuffer keyCache;
  private DeviceBuffer valueCache;
  private KvPoolSpec pool;
  private long layerKvBytes;

  private final GpuStartupReport.Builder report = new GpuStartupReport.Builder();
  private GpuStartupReport startup;
  private String graphFailure;
  private boolean closed;

  private static final class Layer {
    DeviceBuffer attentionNorm;
    DeviceBuffer wqkv;
    DeviceBuffer bqkv;
    DeviceBuffer wo;
    DeviceBuffer bo;
    DeviceBuffer mlpNorm;
    DeviceBuffer wGateUp;
    DeviceBuffer bGateUp;
    DeviceBuffer wDown;
    DeviceBuffer bDown;
  }

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
    this.c = config;
    this.options = options;
    this.st = options.storage();
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
    this.spec = ModelSpec.of(c, modelLen);
    this.maxRows = options.maxNumSeqs();
    this.maxTokens = Math.max(options.maxBatchedTokens(), maxRows);
    this.maxBlocks = (modelLen + options.blockSize() - 1) / options.blockSize();
    this.buckets = DecodeBuckets.upTo(maxRows);
    this.qDim = c.queryDim();
    this.kvDim = c.kvDim();
    this.qkvDim = qDim + 2 * kvDim;
    this.ff = c.intermediateSize();
    try {
      long t0 = System.nanoTime();
      this.module = CudaModule.load();
      long baseline = Cuda.memInfo()[0];
      report.device(Cuda.deviceName(), Cuda.memInfo()[1], baseline);
      CUstream_st s = new CUstream_st();
      Cuda.check(cudart.cudaStreamCreate(s), "cudaStreamCreate");
      this.stream = s;
      this.blas = new Cublas(stream);
      this.k =
          new Kernels(
              module,
              st,
              c.headDim(),
              options.programmaticLaunch() && Cuda.programmaticLaunchSupported());
      long before = Cuda.memInfo()[0];
      loadWeights(weights);
      report.weights(before - Cuda.memInfo()[0], (System.nanoTime() - t0) / 1e6);
      before = Cuda.memInfo()[0];
      allocateActivations();
      report.activations(before - Cuda.memInfo()[0]);
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

  private static void checkSupported(LlamaConfig c) {
    int hd = c.headDim();
    if (hd != 32 && hd != 64 && hd != 128) {
      throw new InvalidInputException(
          "the CUDA runner supports head_dim 32, 64 and 128, not " + hd);
    }
    if (c.groupSize() > MAX_GROUP) {
      throw new InvalidInputException(
          "the CUDA runner supports up to "
              + MAX_GROUP
              + " query heads per KV head, not "
              + c.groupSize());
    }
  }

  // ---- set-up ---------------------------------------------------------------------------------

  private DeviceBuffer alloc(long bytes) {
    DeviceBuffer b = new DeviceBuffer(bytes);
    allocations.add(b);
    return b;
  }

  private void free(DeviceBuffer b) {
    if (b != null) {
      allocations.remove(b);
      b.close();
    }
  }

  private void loadWeights(SafetensorsModel w) {
    long h = c.hiddenSize();
    long vocab = c.vocabSize();
    long staging = Math.max(vocab * h, Math.max(2L * ff * h, (long) qkvDim * h));
    DeviceBuffer stage = st == StorageType.F16 ? alloc(4 * staging) : null;
    try {
      WeightUploader up = new WeightUploader(w, stage);
      embedding = alloc(vocab * h * st.bytes);
      up.matrix(embedding, 0, "model.embed_tokens.weight", vocab, h);
      if (options.fusedNorms()) {
        float[] ones = new float[(int) h];
        java.util.Arrays.fill(ones, 1f);
        unitNorm = alloc(4 * h);
        unitNorm.upload(ones);
      }
      layers = new Layer[c.numLayers()];
      for (int i = 0; i < layers.length; i++) {
        String p = "model.layers." + i + ".";
        Layer l = new Layer();
        float[] g = up.normWeight(p + "input_layernorm.weight", h);
        l.attentionNorm = up.norm(g);
        l.wqkv = alloc((long) qkvDim * h * st.bytes);
        up.normedMatrix(l.wqkv, 0, p + "self_attn.q_proj.weight", g, qDim, h);
        up.normedMatrix(l.wqkv, (long) qDim * h, p + "self_attn.k_proj.weight", g, kvDim, h);
        up.normedMatrix(
            l.wqkv, (long) (qDim + kvDim) * h, p + "self_attn.v_proj.weight", g, kvDim, h);
        if (c.qkvBias()) {
          l.bqkv = alloc((long) qkvDim * st.bytes);
          up.matrix(l.bqkv, 0, p + "self_attn.q_proj.bias", qDim);
          up.matrix(l.bqkv, qDim, p + "self_attn.k_proj.bias", kvDim);
          up.matrix(l.bqkv, qDim + kvDim, p + "self_attn.v_proj.bias", kvDim);
        }
        l.wo = alloc(h * qDim * st.bytes);
        up.matrix(l.wo, 0, p + "self_attn.o_proj.weight", h, qDim);
        if (c.outputBias()) {
          l.bo = alloc(h * st.bytes);
          up.matrix(l.bo, 0, p + "self_attn.o_proj.bias", h);
        }
        g = up.normWeight(p + "post_attention_layernorm.weight", h);
        l.mlpNorm = up.norm(g);
        l.wGateUp = alloc(2L * ff * h * st.bytes);
        up.normedMatrix(l.wGateUp, 0, p + "mlp.gate_proj.weight", g, ff, h);
        up.normedMatrix(l.wGateUp, (long) ff * h, p + "mlp.up_proj.weight", g, ff, h);
        l.wDown = alloc(h * ff * st.bytes);
        up.matrix(l.wDown, 0, p + "mlp.down_proj.weight", h, ff);
        if (c.mlpBias()) {
          l.bGateUp = alloc(2L * ff * st.bytes);
          up.matrix(l.bGateUp, 0, p + "mlp.gate_proj.bias", ff);
          up.matrix(l.bGateUp, ff, p + "mlp.up_proj.bias", ff);
          l.bDown = alloc(h * st.bytes);
          up.matrix(l.bDown, 0, p + "mlp.down_proj.bias", h);
        }
        layers[i] = l;
      }
      // The final norm keeps its weight: the LM head may be the embedding table too.
      finalNorm = up.vector(up.normWeight("model.norm.weight", h));
      if (w.contains("lm_head.weight")) {
        lmHead = alloc(vocab * h * st.bytes);
        up.matrix(lmHead, 0, "lm_head.weight", vocab, h);
      } else if (c.tieWordEmbeddings()) {
        lmHead = embedding;
      } else {
        throw new io.kiln.ModelException(
            "missing tensor 'lm_head.weight' in "
                + w.directory()
                + " (tie_word_embeddings is false)");
      }
      uploadRopeTables();
      sync();
    } finally {
      free(stage);
    }
  }

  /** Reads tensors as fp32 and stores them in the storage type (cast on the device for fp16). */
  private final class WeightUploader {
    final SafetensorsModel w;
    final DeviceBuffer stage;

    WeightUploader(SafetensorsModel w, DeviceBuffer stage) {
      this.w = w;
      this.stage = stage;
    }

    /** Copies a tensor to {@code elementOffset} elements into {@code dst}. */
    void matrix(DeviceBuffer dst, long elementOffset, String name, long... shape) {
      store(dst, elementOffset, w.readFloats(name, shape));
    }

    /**
     * A [rows, cols] weight that reads the output of the RMSNorm with weight {@code g}. With fused
     * norms g is folded in (column j times g[j]) and the norm itself runs with unit weight.
     */
    void normedMatrix(
        DeviceBuffer dst, long elementOffset, String name, float[] g, long rows, long cols) {
      float[] data = w.readFloats(name, rows, cols);
      if (options.fusedNorms()) {
        for (int r = 0; r < rows; r++) {
          int at = r * (int) cols;
          for (int j = 0; j < cols; j++) {
            data[at + j] *= g[j];
          }
        }
      }
      store(dst, elementOffset, data);
    }

    private void store(DeviceBuffer dst, long elementOffset, float[] data) {
      if (st == StorageType.F32) {
        dst.upload(data, 4 * elementOffset);
      } else {
        stage.upload(data);
        long out = dst.address(2 * elementOffset);
        dst.address(2 * (elementOffset + data.length));
        k.castToHalf(stream, out, stage.address(), (long) data.length);
        sync();
      }
    }

    float[] normWeight(String name, long size) {
      return w.readFloats(name, size);
    }

    /** The layer norm's device weight: g, or ones where g is folded into the products. */
    DeviceBuffer norm(float[] g) {
      return options.fusedNorms() ? unitNorm : vector(g);
    }

    DeviceBuffer vector(float[] v) {
      DeviceBuffer b = alloc(4L * v.length);
      b.upload(v);
      return b;
    }
  }

  /** cos and sin of every position's rotary angles, computed in double like the CPU runner. */
  private void uploadRopeTables() {
    int half = c.headDim() / 2;
    int positions = spec.maxPositions();
    double[] inv = c.inverseFrequencies();
    float[] cos = new float[positions * half];
    float[] sin = new float[positions * half];
    for (int p = 0; p < positions; p++) {
      for (int i = 0; i < half; i++) {
        double angle = p * inv[i];
        cos[p * half + i] = (float) Math.cos(angle);
        sin[p * half + i] = (float) Math.sin(angle);
      }
    }
    ropeCos = alloc(4L * cos.length);
    ropeSin = alloc(4L * sin.length);
    ropeCos.upload(cos);
    ropeSin.upload(sin);
  }

  private void allocateActivations() {
    long h = c.hiddenSize();
    long t = maxTokens;
    x = alloc(4 * t * h);
    xb = alloc(t * h * st.bytes);
    qkv = alloc(t * qkvDim * st.bytes);
    att = alloc(t * qDim * st.bytes);
    proj = alloc(t * h * st.bytes);
    gateUp = alloc(t * 2 * ff * st.bytes);
    mlp = alloc(t * ff * st.bytes);
    lastX = alloc(4L * maxRows * h);
    lastNormed = alloc(maxRows * h * st.bytes);
    logits = alloc(4L * maxRows * c.vocabSize());
    long splitRows = (long) maxRows * c.numHeads() * MAX_SPLITS;
    partAcc = alloc(4 * splitRows * c.headDim());
    partMl = alloc(4 * splitRows * 2);
    layout = new StepLayout(maxTokens, maxRows, maxBlocks, options.blockSize());
    meta = alloc(4L * layout.data.length);
    hostMeta = new IntPointer(pinnedHost(4L * layout.data.length));
    hostLogits = new FloatPointer(pinnedHost(4L * maxRows * c.vocabSize()));
    greedy = alloc(4L * maxRows);
    hostGreedy = new IntPointer(pinnedHost(4L * maxRows));
    hostGreedyKeys = new LongPointer(pinnedHost(8L * maxRows));
  }

  private Pointer pinnedHost(long bytes) {
    try (PointerPointer<Pointer> out = new PointerPointer<>(1)) {
      Cuda.check(cudart.cudaMallocHost(out, bytes), "cudaMallocHost of " + bytes + " bytes");
      Pointer p = Cuda.at(out.get(0).address());
      pinned.add(p);
      return p;
    }
  }

  /**
   * Sizes the KV pool from the memory left after weights, activations and the decode graphs. The
   * graphs are captured once against a two-block pool to measure them, then again against the real
   * pool (kernel arguments hold its address).
   */
  private void sizeAndCapture() {
    long perBlock = 2L * c.numLayers() * options.blockSize() * kvDim * st.bytes;
    long graphBytes = 0;
    if (options.cudaGraphs() && options.kvBlocks() == 0) {
      allocateKv(2);
      long before = Cuda.memInfo()[0];
      captureGraphs();
      graphBytes = Math.max(0, before - Cuda.memInfo()[0]);
      destroyGraphs();
      freeKv();
    }
    int blocks;
    if (options.kvBlocks() > 0) {
      blocks = options.kvBlocks();
    } else {
      long free = Cuda.memInfo()[0] - graphBytes;
      long budget = (long) (free * options.kvUtilization());
      long maxBlocksByIndex = Integer.MAX_VALUE / ((long) options.blockSize() * kvDim);
      blocks = (int) Math.min(maxBlocksByIndex, budget / perBlock);
      if (blocks < 2) {
        throw new BackendException(
            "no device memory left for the KV cache: "
                + free
                + " bytes free after weights, activations and graphs, "
                + perBlock
                + " bytes per block");
      }
    }
    allocateKv(blocks);
    long t0 = System.nanoTime();
    long before = Cuda.memInfo()[0];
    if (options.cudaGraphs() && graphFailure == null) {
      captureGraphs();
    }
    long measured = Math.max(0, before - Cuda.memInfo()[0]);
    report.kv(blocks, options.blockSize(), perBlock * blocks);
    report.graphs(graphs.size(), Math.max(graphBytes, measured), (System.nanoTime() - t0) / 1e6);
  }

  private void allocateKv(int blocks) {
    layerKvBytes = (long) blocks * options.blockSize() * kvDim * st.bytes;
    keyCache = alloc(layerKvBytes * c.numLayers());
    valueCache = alloc(layerKvBytes * c.numLayers());
    // Zero the pool: padding rows read the null block, which must hold finite values.
    Cuda.check(cudart.cudaMemset(keyCache.pointer(), 0, keyCache.bytes), "cudaMemset KV");
    Cuda.check(cudart.cudaMemset(valueCache.pointer(), 0, valueCache.bytes), "cudaMemset KV");
    pool = new KvPoolSpec(blocks, options.blockSize());
  }

  private void freeKv() {
    free(keyCache);
    free(valueCache);
    keyCache = null;
    valueCache = null;
  }

  /**
   * Captures one decode graph per bucket. If the driver refuses a capture, the runner keeps going
   * eagerly and the start-up report says why (zero graphs), rather than not starting at all.
   */
  private void captureGraphs() {
    for (int bucket : buckets) {
      layout.fillDecode(List.of(), bucket);
      uploadMeta();
      // An eager run first: cuBLAS picks and loads its kernels outside the capture.
      compute(bucket, bucket, splitsFor(bucket));
      sync();
      try {
        graphs.put(bucket, capture(() -> compute(bucket, bucket, splitsFor(bucket))));
      } catch (RuntimeException e) {
        destroyGraphs();
        graphFailure = "decode graph capture failed at batch " + bucket + ": " + e.getMessage();
        System.err.println("[kiln] " + graphFailure + "; decoding eagerly");
        sync();
        return;
      }
    }
  }

  /** Captures what {@code step} enqueues on the runner's stream as an instantiated graph. */
  private CUgraphExec_st capture(Runnable step) {
    Cuda.check(
        cudart.cudaStreamBeginCapture(stream, cudart.cudaStreamCaptureModeThreadLocal),
        "cudaStreamBeginCapture");
    CUgraph_st graph = new CUgraph_st();
    RuntimeException failure = null;
    try {
      step.run();
    } catch (RuntimeException e) {
      failure = e;
    }
    int ended = cudart.cudaStreamEndCapture(stream, graph);
    if (failure != null) {
      if (ended == cudart.cudaSuccess && !graph.isNull()) {
        cudart.cudaGraphDestroy(graph);
      }
      throw failure;
    }
    Cuda.check(ended, "cudaStreamEndCapture");
    CUgraphExec_st exec = new CUgraphExec_st();
    try {
      Cuda.check(cudart.cudaGraphInstantiate(exec, graph, 0L), "cudaGraphInstantiate");
    } finally {
      Cuda.check(cudart.cudaGraphDestroy(graph), "cudaGraphDestroy");
    }
    return exec;
  }

  private void destroyGraphs() {
    for (CUgraphExec_st exec : graphs.values()) {
      Cuda.check(cudart.cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
    }
    graphs.clear();
  }

  private int splitsFor(int batch) {
    return DecodeBuckets.splitsFor(batch, c.numKvHeads(), Cuda.multiprocessors(), MAX_SPLITS);
  }

  // ---- the step -------------------------------------------------------------------------------

  @Override
  public ModelSpec spec() {
    return spec;
  }

  @Override
  public KvPoolSpec kvPool() {
    return pool;
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
    enqueue(batch, true);
    return downloadLogits(batch);
  }

  /**
   * The greedy tokens come from an argmax on the device: only ints travel back. The skinny LM head
   * leaves it in the step's greedy keys; otherwise the argmax kernel runs after the step.
   */
  @Override
  public int[] forwardGreedy(List<SequenceChunk> batch) {
    enqueue(batch, true);
    int[] tokens = new int[batch.size()];
    java.util.Arrays.fill(tokens, -1);
    int rows = layout.numLogitRows;
    boolean keys = skinny(rows);
    if (keys) {
      // The greedy keys lead the step inputs (StepLayout.greedyKeys() is 0).
      Cuda.check(
          cudart.cudaMemcpyAsync(
              hostGreedyKeys, meta.pointer(), 8L * rows, cudart.cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync greedy keys");
    } else if (rows > 0) {
      k.argmax(stream, rows, logits.address(), c.vocabSize(), greedy.address());
      Cuda.check(
          cudart.cudaMemcpyAsync(
              hostGreedy, greedy.pointer(), 4L * rows, cudart.cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync tokens");
    }
    sync();
    for (int r = 0; r < rows; r++) {
      int chunk = layout.logitChunk[r];
      if (chunk < batch.size()) {
        tokens[chunk] = keys ? StepLayout.greedyToken(hostGreedyKeys.get(r)) : hostGreedy.get(r);
      }
    }
    return tokens;
  }

  /** Runs the step eagerly, without the graph, even for a decode batch (for tests). */
  float[][] forwardEager(List<SequenceChunk> batch) {
    enqueue(batch, false);
    return downloadLogits(batch);
  }

  /** Uploads the step's inputs and enqueues its compute: a graph replay for decode batches. */
  private void enqueue(List<SequenceChunk> batch, boolean useGraph) {
    if (closed) {
      throw new IllegalStateException("runner closed");
    }
    SequenceChunks.validate(batch, spec, pool);
    Cuda.makeCurrent();
    int bucket = isDecode(batch) ? DecodeBuckets.bucketFor(buckets, batch.size()) : -1;
    if (bucket > 0) {
      layout.fillDecode(batch, bucket);
      uploadMeta();
      CUgraphExec_st graph = useGraph ? graphs.get(bucket) : null;
      if (graph != null) {
        Cuda.check(cudart.cudaGraphLaunch(graph, stream), "cudaGraphLaunch");
      } else {
        compute(bucket, bucket, splitsFor(bucket));
      }
    } else {
      layout.fillEager(batch);
      uploadMeta();
      compute(layout.numTokens, layout.numLogitRows, 1);
    }
  }

  private static boolean isDecode(List<SequenceChunk> batch) {
    for (SequenceChunk chunk : batch) {
      if (chunk.tokens().length != 1 || !chunk.wantLogits()) {
        return false;
      }
    }
    return true;
  }

  private void uploadMeta() {
    int used = layout.used();
    hostMeta.position(0).put(layout.data, 0, used);
    Cuda.check(
        cudart.cudaMemcpyAsync(
            meta.pointer(), hostMeta, 4L * used, cudart.cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync step inputs");
  }

  private float[][] downloadLogits(List<SequenceChunk> batch) {
    float[][] out = new float[batch.size()][];
    int vocab = c.vocabSize();
    int rows = layout.numLogitRows;
    if (rows > 0) {
      Cuda.check(
          cudart.cudaMemcpyAsync(
              hostLogits,
              logits.pointer(),
              4L * rows * vocab,
              cudart.cudaMemcpyDeviceToHost,
              stream),
          "cudaMemcpyAsync logits");
    }
    sync();
    for (int r = 0; r < rows; r++) {
      int chunk = layout.logitChunk[r];
      if (chunk < batch.size()) {
        float[] row = new float[vocab];
        hostLogits.position((long) r * vocab).get(row);
        out[chunk] = row;
      }
    }
    hostLogits.position(0);
    return out;
  }

  private void sync() {
    Cuda.check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  private long metaAt(int intOffset) {
    return meta.address(4L * intOffset);
  }

  /**
   * Whether a step of {@code tokens} rows runs its dense layers through the skinny GEMM: one-row
   * steps only. Its builds for 2 to 8 rows fit half the blocks on a multiprocessor and measured
   * slower than cuBLAS on an H200 (bench/results/llm-gpu-2026-11-29-launch-paths.md).
   */
  private boolean skinny(int tokens) {
    return options.skinnyGemm() && tokens == 1;
  }

  /**
   * Whether a step of {@code tokens} rows runs its layer norms and residual adds inside the skinny
   * products (fused norms, a skinny step, a model without biases).
   */
  private boolean normsInProducts(int tokens) {
    return options.fusedNorms()
        && skinny(tokens)
        && !c.qkvBias()
        && !c.outputBias()
        && !c.mlpBias();
  }

  /** Which GEMM a step of {@code tokens} rows uses: "skinny" or "cublas" (for reports). */
  public String gemmPath(int tokens) {
    return skinny(tokens) ? "skinny" : "cublas";
  }

  /** out[n, outDim] = in[n, inDim] times the weight (+ bias, where the model has one). */
  private void project(
      DeviceBuffer out,
      DeviceBuffer in,
      DeviceBuffer w,
      DeviceBuffer bias,
      int n,
      int inDim,
      int outDim) {
    if (skinny(n)) {
      int sms = Cuda.multiprocessors();
      if (bias != null) {
        k.skinnyGemmBias(
            stream,
            sms,
            n,
            inDim,
            outDim,
            out.address(),
            in.address(),
            w.address(),
            bias.address());
      } else {
        k.skinnyGemm(stream, sms, n, inDim, outDim, out.address(), in.address(), w.address());
      }
      return;
    }
    blas.linear(
        out.address(), st.cudaType, in.address(), w.address(), st.cudaType, n, inDim, outDim);
    if (bias != null) {
      k.addBias(stream, out.address(), bias.address(), n, outDim);
    }
  }

  /**
   * mlp = silu(xb . gate^T) * (xb . up^T): one skinny pass over both weights where it applies and
   * both stages run.
   */
  private void gatedProduct(Layer l, int n, Set<DecodeStage> stages) {
    int h = c.hiddenSize();
    boolean up = stages.contains(DecodeStage.MLP_UP);
    boolean silu = stages.contains(DecodeStage.SILU);
    if (up && silu && normsInProducts(n)) {
      k.skinnyGemmSiluNormed(
          stream,
          Cuda.multiprocessors(),
          n,
          h,
          ff,
          mlp.address(),
          x.address(),
          l.wGateUp.address(),
          (float) c.rmsNormEps());
      return;
    }
    if (up && silu && skinny(n) && l.bGateUp == null) {
      k.skinnyGemmSilu(
          stream,
          Cuda.multiprocessors(),
          n,
          h,
          ff,
          mlp.address(),
          xb.address(),
          l.wGateUp.address());
      return;
    }
    if (up) {
      project(gateUp, xb, l.wGateUp, l.bGateUp, n, h, 2 * ff);
    }
    if (silu) {
      k.siluMul(stream, mlp.address(), gateUp.address(), n, ff);
    }
  }

  /** The language-model head on the normed last rows: fp32 logits. */
  private void projectLogits(int rows) {
    int h = c.hiddenSize();
    if (skinny(rows)) {
      k.skinnyGemmLogits(
          stream,
          Cuda.multiprocessors(),
          rows,
          h,
          c.vocabSize(),
          logits.address(),
          lastNormed.address(),
          lmHead.address(),
          metaAt(layout.greedyKeys()));
    } else {
      blas.linear(
          logits.address(),
          StorageType.F32.cudaType,
          lastNormed.address(),
          lmHead.address(),
          st.cudaType,
          rows,
          h,
          c.vocabSize());
    }
  }

  /** x += proj, then xb = rmsnorm(x) with {@code weight}: one fused kernel. */
  private void addThenNorm(int n, DeviceBuffer weight, float eps) {
    int h = c.hiddenSize();
    k.addRmsnorm(stream, n, x.address(), proj.address(), xb.address(), weight.address(), h, eps);
  }

  /** Enqueues the whole forward pass for {@code n} attention rows and {@code rows} logits rows. */
  private void compute(int n, int rows, int splits) {
    compute(n, rows, splits, DecodeStage.ALL);
  }

  /**
   * Enqueues the forward pass, or only its {@code stages} (the others are skipped and their buffers
   * keep whatever they hold: timing only). With the norms in the products, x is the residual stream
   * throughout: the QKV and gate/up products norm it themselves, the output and down projections
   * add into it.
   */
  private void compute(int n, int rows, int splits, Set<DecodeStage> stages) {
    int h = c.hiddenSize();
    float eps = (float) c.rmsNormEps();
    boolean norms = stages.contains(DecodeStage.NORMS);
    boolean inProducts = normsInProducts(n);

    if (norms) {
      k.embeddingGather(stream, x.address(), embedding.address(), metaAt(layout.tokens()), n, h);
    }
    if (norms && !inProducts) {
      k.rmsnorm(stream, n, xb.address(), x.address(), layers[0].attentionNorm.address(), h, eps);
    }
    for (int i = 0; i < layers.length; i++) {
      Layer l = layers[i];
      long kc = keyCache.address(i * layerKvBytes);
      long vc = valueCache.address(i * layerKvBytes);

      // Attention block; xb holds rmsnorm(x) on entry (unless the products norm x themselves).
      qkvAndRope(l, n, kc, vc, stages);
      if (stages.contains(DecodeStage.ATTENTION)) {
        attend(n, kc, vc, splits);
      }
      if (inProducts) {
        // x += att . wo, then x += mlp(rmsnorm(x)) . wDown: no norm kernels in between.
        if (stages.contains(DecodeStage.O_PROJ)) {
          addProduct(att, l.wo, n, qDim);
        }
        gatedProduct(l, n, stages);
        if (stages.contains(DecodeStage.MLP_DOWN)) {
          addProduct(mlp, l.wDown, n, ff);
        }
        continue;
      }
      if (stages.contains(DecodeStage.O_PROJ)) {
        project(proj, att, l.wo, l.bo, n, qDim, h);
      }
      // x += attention output; xb = rmsnorm(x) for the MLP.
      if (norms) {
        addThenNorm(n, l.mlpNorm, eps);
      }

      gatedProduct(l, n, stages);
      if (stages.contains(DecodeStage.MLP_DOWN)) {
        project(proj, mlp, l.wDown, l.bDown, n, ff, h);
      }
      // x += MLP output; xb = rmsnorm(x) with the next layer's weight.
      if (norms && i + 1 < layers.length) {
        addThenNorm(n, layers[i + 1].attentionNorm, eps);
      } else if (norms) {
        k.residualAdd(stream, x.address(), proj.address(), (long) n * h);
      }
    }
    if (rows == 0) {
      return;
    }
    if (norms) {
      // When every row wants logits (decode steps) the logits rows are the rows in order.
      boolean allRows = rows == n;
      if (!allRows) {
        k.gatherRows(stream, lastX.address(), x.address(), metaAt(layout.logitRows()), rows, h);
      }
      k.rmsnorm(
          stream,
          rows,
          lastNormed.address(),
          (allRows ? x : lastX).address(),
          finalNorm.address(),
          h,
          eps);
    }
    if (stages.contains(DecodeStage.LM_HEAD)) {
      projectLogits(rows);
    }
  }

  /** x += in times the weight (rounded to the storage type first), one skinny kernel. */
  private void addProduct(DeviceBuffer in, DeviceBuffer w, int n, int inDim) {
    k.skinnyGemmResidual(
        stream,
        Cuda.multiprocessors(),
        n,
        inDim,
        c.hiddenSize(),
        x.address(),
        in.address(),
        w.address());
  }

  /**
   * qkv = xb times the QKV weight, then RoPE on the q and k heads and the k/v heads into their pool
   * slots: one skinny kernel where it applies and both stages run (norming x itself where the norms
   * run in the products).
   */
  private void qkvAndRope(Layer l, int n, long kc, long vc, Set<DecodeStage> stages) {
    int h = c.hiddenSize();
    int hd = c.headDim();
    long positions = metaAt(layout.positions());
    long slots = metaAt(layout.slots());
    boolean projection = stages.contains(DecodeStage.QKV);
    boolean rope = stages.contains(DecodeStage.ROPE_KV);
    SkinnyGemm.RopeKv targets =
        new SkinnyGemm.RopeKv(
            positions,
            ropeCos.address(),
            ropeSin.address(),
            kc,
            vc,
            slots,
            c.numHeads(),
            c.numKvHeads(),
            hd);
    if (projection && rope && normsInProducts(n)) {
      k.skinnyGemmRopeKvNormed(
          stream,
          Cuda.multiprocessors(),
          n,
          h,
          qkvDim,
          qkv.address(),
          x.address(),
          l.wqkv.address(),
          targets,
          (float) c.rmsNormEps());
      return;
    }
    if (projection && rope && skinny(n) && l.bqkv == null) {
      k.skinnyGemmRopeKv(
          stream,
          Cuda.multiprocessors(),
          n,
          h,
          qkvDim,
          qkv.address(),
          xb.address(),
          l.wqkv.address(),
          targets);
      return;
    }
    if (projection) {
      project(qkv, xb, l.wqkv, l.bqkv, n, h, qkvDim);
    }
    if (rope) {
      k.ropeKvWrite(
          stream,
          qkv.address(),
          positions,
          ropeCos.address(),
          ropeSin.address(),
          kc,
          vc,
          slots,
          n,
          c.numHeads(),
          c.numKvHeads(),
          hd,
          qkvDim);
    }
  }

  /**
   * att = paged attention of the q rows over their sequences' K/V, split over the context. In a
   * decode step the K/V of all but each row's last position is read before the wait on the QKV
   * kernel.
   */
  private void attend(int n, long kc, long vc, int splits) {
    int hd = c.headDim();
    k.pagedAttention(
        stream,
        n,
        qkv.address(),
        qkvDim,
        kc,
        vc,
        metaAt(layout.blockTables()),
        maxBlocks,
        metaAt(layout.rowSeq()),
        metaAt(layout.contextLens()),
        c.numHeads(),
        c.numKvHeads(),
        options.blockSize(),
        (float) (1.0 / Math.sqrt(hd)),
        c.slidingWindow(),
        splits,
        partAcc.address(),
        partMl.address(),
        att.address(),
        qDim,
        layout.decode);
    if (splits > 1) {
      k.attentionCombine(
          stream,
          n,
          partAcc.address(),
          partMl.address(),
          att.address(),
          c.numHeads(),
          hd,
          splits,
          qDim);
    }
  }

  /** Most tokens one step may carry. */
  public int maxTokensPerStep() {
    return maxTokens;
  }

  /** Bytes of K and V one position holds over all layers. */
  long kvBytesPerPosition() {
    return 2L * c.numLayers() * kvDim * st.bytes;
  }

  /** Weight bytes a decode step reads: every matrix once, the norms, one embedding row. */
  long weightBytesPerDecodeStep() {
    long h = c.hiddenSize();
    long perLayer = ((long) qkvDim * h + h * qDim + 2L * ff * h + h * ff) * st.bytes + 8 * h;
    return c.numLayers() * perLayer + (long) c.vocabSize() * h * st.bytes + 4 * h + h * st.bytes;
  }

  /**
   * Replays the graph of the last decode step {@code reps} times back to back and returns the
   * device milliseconds per replay (it rewrites the same KV slots with the same values).
   */
  double timeLastDecodeReplay(int reps) {
    Cuda.makeCurrent();
    CUgraphExec_st graph = graphs.get(layout.numTokens);
    if (graph == null) {
      return Double.NaN;
    }
    return Cuda.millisPerReplay(graph, stream, 1, reps);
  }

  /**
   * Device milliseconds per replay of only {@code stages} of the last decode step (captured for
   * this call): where the time of {@link #timeLastDecodeReplay} goes. The stages left out do not
   * run, so their outputs are stale; a stage alone may write the K/V slots of that step again.
   */
  double timeLastDecodeStages(Set<DecodeStage> stages, int reps) {
    Cuda.makeCurrent();
    int n = layout.numTokens;
    if (graphs.get(n) == null) {
      return Double.NaN;
    }
    CUgraphExec_st part = capture(() -> compute(n, n, splitsFor(n), stages));
    try {
      return Cuda.millisPerReplay(part, stream, 1, reps);
    } finally {
      Cuda.check(cudart.cudaGraphExecDestroy(part), "cudaGraphExecDestroy");
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (module == null) {
      return;
    }
    Cuda.makeCurrent();
    if (stream != null) {
      cudart.cudaStreamSynchronize(stream);
    }
    destroyGraphs();
    if (blas != null) {
      blas.close();
    }
    for (DeviceBuffer b : allocations) {
      b.close();
    }
    allocations.clear();
    for (Pointer p : pinned) {
      cudart.cudaFreeHost(p);
    }
    pinned.clear();
    if (stream != null) {
      Cuda.check(cudart.cudaStreamDestroy(stream), "cudaStreamDestroy");
    }
    module.close();
  }
}
