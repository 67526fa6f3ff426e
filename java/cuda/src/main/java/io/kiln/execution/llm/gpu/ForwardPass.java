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
  /** One enqueue: rows, splits and which stages run; fixed for all its layers. */
  private record Step(
      int tokens, int rows, int splits, Set<DecodeStage> stages, boolean inProducts) {
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

  /**
   * Attention splits of a step of {@code rows} query rows: enough blocks to fill the device (a
   * verification's few rows as much as a decode batch), within what the partial buffers hold.
   */
  int splitsFor(int rows) {
    return DecodeBuckets.splitsWithin(
        rows, config.numKvHeads(), Cuda.multiprocessors(), activations.splitCapacity);
  }

  /** Whether a step of {@code tokens} rows runs its dense layers through the skinny GEMM. */
  boolean skinny(int tokens) {
    return products.skinny(tokens);
  }

  /**
   * Whether a step of {@code tokens} rows runs its layer norms and residual adds inside the skinny
   * products (fused norms, a skinny step, a model without biases): the one-row build and the
   * tensor-core build for 2 to 8 rows both norm the fp32 residual stream themselves.
   */
  boolean normsInProducts(int tokens) {
    return options.fusedNorms()
        && skinny(tokens)
        && !config.qkvBias()
        && !config.outputBias()
        && !config.mlpBias();
  }

  /**
   * Enqueues the whole forward pass for {@code tokens} attention rows and {@code rows} logits rows.
   */
  void enqueue(int tokens, int rows, int splits) {
    enqueue(tokens, rows, splits, DecodeStage.ALL);
  }

  /**
   * Enqueues the forward pass, or only its {@code stages} (the others are skipped and their buffers
   * keep whatever they hold: timing only).
   */
  void enqueue(int tokens, int rows, int splits, Set<DecodeStage> stages) {
    Step step = new Step(tokens, rows, splits, stages, normsInProducts(tokens));
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
  private void embed(Step step) {
    if (step.runs(DecodeStage.NORMS)) {
      kernels.embeddingGather(
          stream,
          activations.residual.address(),
          weights.embedding.address(),
          stepIo.metaAt(stepIo.layout.tokens()),
          step.tokens(),
          hidden);
    }
    if (step.normKernels()) {
      kernels.rmsnorm(
          stream,
          step.tokens(),
          activations.normed.address(),
          activations.residual.address(),
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
  private void qkvAndRope(Step step, DeviceWeights.Layer layer, int index) {
    int tokens = step.tokens();
    int hd = config.headDim();
    long keys = kvPool.keys(index);
    long values = kvPool.values(index);
    long positions = stepIo.metaAt(stepIo.layout.positions());
    long slots = stepIo.metaAt(stepIo.layout.slots());
    boolean projection = step.runs(DecodeStage.QKV);
    boolean rope = step.runs(DecodeStage.ROPE_KV);
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
    if (projection && rope && step.inProducts()) {
      kernels.skinnyGemmRopeKvNormed(
          stream,
          Cuda.multiprocessors(),
          tokens,
          hidden,
          qkvDim,
          activations.qkv.address(),
          activations.residual.address(),
          layer.wqkv.address(),
          targets,
          eps);
      return;
    }
    if (projection && rope && skinny(tokens) && layer.bqkv == null) {
      kernels.skinnyGemmRopeKv(
          stream,
          Cuda.multiprocessors(),
          tokens,
          hidden,
          qkvDim,
          activations.qkv.address(),
          activations.normed.address(),
          layer.wqkv.address(),
          targets);
      return;
    }
    if (projection) {
      products.project(
          activations.qkv, activations.normed, layer.wqkv, layer.bqkv, tokens, hidden, qkvDim);
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
          tokens,
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
  private void attention(Step step, int index) {
    if (!step.runs(DecodeStage.ATTENTION)) {
      return;
    }
    int hd = config.headDim();
    int splits = step.splits();
    kernels.pagedAttention(
        stream,
        step.tokens(),
        activations.qkv.address(),
        qkvDim,
        kvPool.keys(index),
        kvPool.values(index),
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
          step.tokens(),
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
  private void outputProjection(Step step, DeviceWeights.Layer layer) {
    towardsResidual(step, DecodeStage.O_PROJ, activations.att, layer.wo, layer.bo, qDim);
  }

  /** x += attention output; xb = rmsnorm(x) for the MLP (in the products: nothing to do). */
  private void mlpNorm(Step step, DeviceWeights.Layer layer) {
    if (step.normKernels()) {
      addThenNorm(step.tokens(), layer.mlpNorm);
    }
  }

  /**
   * mlp = silu(xb . gate^T) * (xb . up^T): one skinny pass over both weights where it applies and
   * both stages run.
   */
  private void gatedProduct(Step step, DeviceWeights.Layer layer) {
    int tokens = step.tokens();
    boolean up = step.runs(DecodeStage.MLP_UP);
    boolean silu = step.runs(DecodeStage.SILU);
    if (up && silu && step.inProducts()) {
      kernels.skinnyGemmSiluNormed(
          stream,
          Cuda.multiprocessors(),
          tokens,
          hidden,
          ff,
          activations.mlp.address(),
          activations.residual.address(),
          layer.wGateUp.address(),
          eps);
      return;
    }
    if (up && silu && skinny(tokens) && layer.bGateUp == null) {
      kernels.skinnyGemmSilu(
          stream,
          Cuda.multiprocessors(),
          tokens,
          hidden,
          ff,
          activations.mlp.address(),
          activations.normed.address(),
          layer.wGateUp.address());
      return;
    }
    if (up) {
      products.project(
          activations.gateUp,
          activations.normed,
          layer.wGateUp,
          layer.bGateUp,
          tokens,
          hidden,
          2 * ff);
    }
    if (silu) {
      kernels.siluMul(stream, activations.mlp.address(), activations.gateUp.address(), tokens, ff);
    }
  }

  /** proj = mlp . wDown (+ bias); in the products: x += mlp . wDown. */
  private void downProjection(Step step, DeviceWeights.Layer layer) {
    towardsResidual(step, DecodeStage.MLP_DOWN, activations.mlp, layer.wDown, layer.bDown, ff);
  }

  /**
   * x += MLP output; xb = rmsnorm(x) with the next layer's weight, or after the last layer only the
   * add (in the products: nothing to do).
   */
  private void residualThenNextNorm(Step step, DeviceWeights.Layer next) {
    if (!step.normKernels()) {
      return;
    }
    if (next != null) {
      addThenNorm(step.tokens(), next.attentionNorm);
    } else {
      kernels.residualAdd(
          stream,
          activations.residual.address(),
          activations.proj.address(),
          (long) step.tokens() * hidden);
    }
  }

  /** lastNormed = rmsnorm of the rows that want logits, with the final norm's weight. */
  private void finalNorm(Step step) {
    if (!step.runs(DecodeStage.NORMS)) {
      return;
    }
    int rows = step.rows();
    // When every row wants logits (decode steps) the logits rows are the rows in order.
    boolean allRows = rows == step.tokens();
    if (!allRows) {
      kernels.gatherRows(
          stream,
          activations.lastX.address(),
          activations.residual.address(),
          stepIo.metaAt(stepIo.layout.logitRows()),
          rows,
          hidden);
    }
    kernels.rmsnorm(
        stream,
        rows,
        activations.lastNormed.address(),
        (allRows ? activations.residual : activations.lastX).address(),
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
        weights.lmHeadInt8,
        rows,
        hidden,
        config.vocabSize(),
        stepIo.metaAt(stepIo.layout.greedyKeys()));
  }

  /**
   * A product whose result joins the residual stream (stage {@code stage}): proj = in . weight (+
   * bias), which the next norm adds; in the products x += in . weight (rounded to the storage type
   * first), one skinny kernel.
   */
  private void towardsResidual(
      Step step,
      DecodeStage stage,
      DeviceBuffer in,
      DeviceBuffer weight,
      DeviceBuffer bias,
      int inDim) {
    if (!step.runs(stage)) {
      return;
    }
    if (step.inProducts()) {
      products.addInto(activations.residual, in, weight, step.tokens(), inDim, hidden);
    } else {
      products.project(activations.proj, in, weight, bias, step.tokens(), inDim, hidden);
    }
  }

  /** x += proj, then xb = rmsnorm(x) with {@code weight}: one fused kernel. */
  private void addThenNorm(int tokens, DeviceBuffer weight) {
    kernels.addRmsnorm(
        stream,
        tokens,
        activations.residual.address(),
        activations.proj.address(),
        activations.normed.address(),
        weight.address(),
        hidden,
        eps);
  }
}
