package io.kiln.execution.llm.gpu;

import io.kiln.cuda.Cuda;
import io.kiln.model.llama.LlamaConfig;
import java.util.Set;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The Llama forward pass of one step, enqueued on the runner's stream:
 *
 * <pre>
 * embed
 * per layer: [norm] QKV + RoPE / K-V write, attention, output projection + residual,
 *            norm, gate/up + SiLU, down projection + residual
 * final norm, LM head
 * </pre>
 *
 * Each step picks its kernels: cuBLAS or Kiln's skinny GEMM for the products ({@link #skinny}),
 * and, where the norms run inside the skinny products ({@link #normsInProducts}), no norm or
 * residual kernels at all: x is then the residual stream throughout, the QKV and gate/up products
 * norm it themselves and the output and down projections add into it. Otherwise xb holds rmsnorm(x)
 * on entry to a layer, and every residual add is fused with the norm after it.
 */
final class ForwardPass {
  /** Most splits of a row's context in attention; sizes the partial-result buffers. */
  static final int MAX_SPLITS = 16;

  /** One enqueue: rows, splits and which stages run; fixed for all its layers. */
  private record Step(int n, int rows, int splits, Set<DecodeStage> stages, boolean inProducts) {
    boolean runs(DecodeStage stage) {
      return stages.contains(stage);
    }

    /** Whether the norms and residual adds run as kernels of their own. */
    boolean normKernels() {
      return runs(DecodeStage.NORMS) && !inProducts;
    }
  }

  private final LlamaConfig config;
  private final GpuRunnerOptions options;
  private final Kernels kernels;
  private final DenseProducts products;
  private final CUstream_st stream;
  private final DeviceWeights weights;
  private final Activations activations;
  private final DeviceKvPool kvPool;
  private final StepIo stepIo;
  private final int maxBlocks;
  private final int hidden;
  private final int qDim;
  private final int qkvDim;
  private final int ff;
  private final float eps;

  ForwardPass(
      LlamaConfig config,
      GpuRunnerOptions options,
      Kernels kernels,
      Cublas blas,
      CUstream_st stream,
      DeviceWeights weights,
      Activations activations,
      DeviceKvPool kvPool,
      StepIo stepIo,
      int maxBlocks) {
    this.config = config;
    this.options = options;
    this.kernels = kernels;
    this.products = new DenseProducts(options, kernels, blas, stream);
    this.stream = stream;
    this.weights = weights;
    this.activations = activations;
    this.kvPool = kvPool;
    this.stepIo = stepIo;
    this.maxBlocks = maxBlocks;
    this.hidden = config.hiddenSize();
    this.qDim = config.queryDim();
    this.qkvDim = qDim + 2 * config.kvDim();
    this.ff = config.intermediateSize();
    this.eps = (float) config.rmsNormEps();
  }

  /** The fp32 logits of the last step's logits rows. */
  DeviceBuffer logits() {
    return activations.logits;
  }

  /** Attention splits of a decode step of {@code batch} rows. */
  int splitsFor(int batch) {
    return DecodeBuckets.splitsFor(batch, config.numKvHeads(), Cuda.multiprocessors(), MAX_SPLITS);
  }

  /** Whether a step of {@code tokens} rows runs its dense layers through the skinny GEMM. */
  boolean skinny(int tokens) {
    return products.skinny(tokens);
  }

  /**
   * Whether a step of {@code tokens} rows runs its layer norms and residual adds inside the skinny
   * products (fused norms, a skinny step, a model without biases).
   */
  boolean normsInProducts(int tokens) {
    return options.fusedNorms()
        && skinny(tokens)
        && !config.qkvBias()
        && !config.outputBias()
        && !config.mlpBias();
  }

  /** Enqueues the whole forward pass for {@code n} attention rows and {@code rows} logits rows. */
  void enqueue(int n, int rows, int splits) {
    enqueue(n, rows, splits, DecodeStage.ALL);
  }

  /**
   * Enqueues the forward pass, or only its {@code stages} (the others are skipped and their buffers
   * keep whatever they hold: timing only).
   */
  void enqueue(int n, int rows, int splits, Set<DecodeStage> stages) {
    Step step = new Step(n, rows, splits, stages, normsInProducts(n));
    DeviceWeights.Layer[] layers = weights.layers;
    embed(step);
    for (int i = 0; i < layers.length; i++) {
      DeviceWeights.Layer layer = layers[i];
      qkvAndRope(step, layer, i);
      attention(step, i);
      outputProjection(step, layer);
      mlpNorm(step, layer);
      gatedProduct(step, layer);
      downProjection(step, layer);
      residualThenNextNorm(step, i + 1 < layers.length ? layers[i + 1] : null);
    }
    if (rows == 0) {
      return;
    }
    finalNorm(step);
    if (step.runs(DecodeStage.LM_HEAD)) {
      lmHead(rows);
    }
  }

  // ---- the steps, top to bottom ---------------------------------------------------------------

  /** x = the tokens' embedding rows; xb = rmsnorm(x) for the first layer (unless in products). */
  private void embed(Step s) {
    if (s.runs(DecodeStage.NORMS)) {
      kernels.embeddingGather(
          stream,
          activations.x.address(),
          weights.embedding.address(),
          stepIo.metaAt(stepIo.layout.tokens()),
          s.n(),
          hidden);
    }
    if (s.normKernels()) {
      kernels.rmsnorm(
          stream,
          s.n(),
          activations.xb.address(),
          activations.x.address(),
          weights.layers[0].attentionNorm.address(),
          hidden,
          eps);
    }
  }

  /**
   * qkv = xb times the QKV weight, then RoPE on the q and k heads and the k/v heads into their pool
   * slots: one skinny kernel where it applies and both stages run (norming x itself where the norms
   * run in the products).
   */
  private void qkvAndRope(Step s, DeviceWeights.Layer l, int layer) {
    int n = s.n();
    int hd = config.headDim();
    long keys = kvPool.keys(layer);
    long values = kvPool.values(layer);
    long positions = stepIo.metaAt(stepIo.layout.positions());
    long slots = stepIo.metaAt(stepIo.layout.slots());
    boolean projection = s.runs(DecodeStage.QKV);
    boolean rope = s.runs(DecodeStage.ROPE_KV);
    SkinnyGemm.RopeKv targets =
        new SkinnyGemm.RopeKv(
            positions,
            weights.ropeCos.address(),
            weights.ropeSin.address(),
            keys,
            values,
            slots,
            config.numHeads(),
            config.numKvHeads(),
            hd);
    if (projection && rope && s.inProducts()) {
      kernels.skinnyGemmRopeKvNormed(
          stream,
          Cuda.multiprocessors(),
          n,
          hidden,
          qkvDim,
          activations.qkv.address(),
          activations.x.address(),
          l.wqkv.address(),
          targets,
          eps);
      return;
    }
    if (projection && rope && skinny(n) && l.bqkv == null) {
      kernels.skinnyGemmRopeKv(
          stream,
          Cuda.multiprocessors(),
          n,
          hidden,
          qkvDim,
          activations.qkv.address(),
          activations.xb.address(),
          l.wqkv.address(),
          targets);
      return;
    }
    if (projection) {
      products.project(activations.qkv, activations.xb, l.wqkv, l.bqkv, n, hidden, qkvDim);
    }
    if (rope) {
      kernels.ropeKvWrite(
          stream,
          activations.qkv.address(),
          positions,
          weights.ropeCos.address(),
          weights.ropeSin.address(),
          keys,
          values,
          slots,
          n,
          config.numHeads(),
          config.numKvHeads(),
          hd,
          qkvDim);
    }
  }

  /**
   * att = paged attention of the q rows over their sequences' K/V, split over the context. In a
   * decode step the K/V of all but each row's last position is read before the wait on the QKV
   * kernel.
   */
  private void attention(Step s, int layer) {
    if (!s.runs(DecodeStage.ATTENTION)) {
      return;
    }
    int hd = config.headDim();
    int splits = s.splits();
    kernels.pagedAttention(
        stream,
        s.n(),
        activations.qkv.address(),
        qkvDim,
        kvPool.keys(layer),
        kvPool.values(layer),
        stepIo.metaAt(stepIo.layout.blockTables()),
        maxBlocks,
        stepIo.metaAt(stepIo.layout.rowSeq()),
        stepIo.metaAt(stepIo.layout.contextLens()),
        config.numHeads(),
        config.numKvHeads(),
        options.blockSize(),
        (float) (1.0 / Math.sqrt(hd)),
        config.slidingWindow(),
        splits,
        activations.partAcc.address(),
        activations.partMl.address(),
        activations.att.address(),
        qDim,
        stepIo.layout.decode);
    if (splits > 1) {
      kernels.attentionCombine(
          stream,
          s.n(),
          activations.partAcc.address(),
          activations.partMl.address(),
          activations.att.address(),
          config.numHeads(),
          hd,
          splits,
          qDim);
    }
  }

  /** proj = att . wo (+ bias); in the products: x += att . wo. */
  private void outputProjection(Step s, DeviceWeights.Layer l) {
    if (!s.runs(DecodeStage.O_PROJ)) {
      return;
    }
    if (s.inProducts()) {
      addProduct(activations.att, l.wo, s.n(), qDim);
    } else {
      products.project(activations.proj, activations.att, l.wo, l.bo, s.n(), qDim, hidden);
    }
  }

  /** x += attention output; xb = rmsnorm(x) for the MLP (in the products: nothing to do). */
  private void mlpNorm(Step s, DeviceWeights.Layer l) {
    if (s.normKernels()) {
      addThenNorm(s.n(), l.mlpNorm);
    }
  }

  /**
   * mlp = silu(xb . gate^T) * (xb . up^T): one skinny pass over both weights where it applies and
   * both stages run.
   */
  private void gatedProduct(Step s, DeviceWeights.Layer l) {
    int n = s.n();
    boolean up = s.runs(DecodeStage.MLP_UP);
    boolean silu = s.runs(DecodeStage.SILU);
    if (up && silu && s.inProducts()) {
      kernels.skinnyGemmSiluNormed(
          stream,
          Cuda.multiprocessors(),
          n,
          hidden,
          ff,
          activations.mlp.address(),
          activations.x.address(),
          l.wGateUp.address(),
          eps);
      return;
    }
    if (up && silu && skinny(n) && l.bGateUp == null) {
      kernels.skinnyGemmSilu(
          stream,
          Cuda.multiprocessors(),
          n,
          hidden,
          ff,
          activations.mlp.address(),
          activations.xb.address(),
          l.wGateUp.address());
      return;
    }
    if (up) {
      products.project(activations.gateUp, activations.xb, l.wGateUp, l.bGateUp, n, hidden, 2 * ff);
    }
    if (silu) {
      kernels.siluMul(stream, activations.mlp.address(), activations.gateUp.address(), n, ff);
    }
  }

  /** proj = mlp . wDown (+ bias); in the products: x += mlp . wDown. */
  private void downProjection(Step s, DeviceWeights.Layer l) {
    if (!s.runs(DecodeStage.MLP_DOWN)) {
      return;
    }
    if (s.inProducts()) {
      addProduct(activations.mlp, l.wDown, s.n(), ff);
    } else {
      products.project(activations.proj, activations.mlp, l.wDown, l.bDown, s.n(), ff, hidden);
    }
  }

  /**
   * x += MLP output; xb = rmsnorm(x) with the next layer's weight, or after the last layer only the
   * add (in the products: nothing to do).
   */
  private void residualThenNextNorm(Step s, DeviceWeights.Layer next) {
    if (!s.normKernels()) {
      return;
    }
    if (next != null) {
      addThenNorm(s.n(), next.attentionNorm);
    } else {
      kernels.residualAdd(
          stream, activations.x.address(), activations.proj.address(), (long) s.n() * hidden);
    }
  }

  /** lastNormed = rmsnorm of the rows that want logits, with the final norm's weight. */
  private void finalNorm(Step s) {
    if (!s.runs(DecodeStage.NORMS)) {
      return;
    }
    int rows = s.rows();
    // When every row wants logits (decode steps) the logits rows are the rows in order.
    boolean allRows = rows == s.n();
    if (!allRows) {
      kernels.gatherRows(
          stream,
          activations.lastX.address(),
          activations.x.address(),
          stepIo.metaAt(stepIo.layout.logitRows()),
          rows,
          hidden);
    }
    kernels.rmsnorm(
        stream,
        rows,
        activations.lastNormed.address(),
        (allRows ? activations.x : activations.lastX).address(),
        weights.finalNorm.address(),
        hidden,
        eps);
  }

  /** The language-model head on the normed last rows: fp32 logits. */
  private void lmHead(int rows) {
    products.logits(
        activations.logits,
        activations.lastNormed,
        weights.lmHead,
        rows,
        hidden,
        config.vocabSize(),
        stepIo.metaAt(stepIo.layout.greedyKeys()));
  }

  /** x += in times the weight (rounded to the storage type first), one skinny kernel. */
  private void addProduct(DeviceBuffer in, DeviceBuffer w, int n, int inDim) {
    products.addInto(activations.x, in, w, n, inDim, hidden);
  }

  /** x += proj, then xb = rmsnorm(x) with {@code weight}: one fused kernel. */
  private void addThenNorm(int n, DeviceBuffer weight) {
    kernels.addRmsnorm(
        stream,
        n,
        activations.x.address(),
        activations.proj.address(),
        activations.xb.address(),
        weight.address(),
        hidden,
        eps);
  }
}
