package io.kiln.execution.llm;

import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaWeights;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ForkJoinPool;

/**
 * The Llama-family forward pass in float32 on the CPU, over a paged KV pool in host memory. All
 * tokens of a step (every chunk of every sequence) go through each matmul together; attention then
 * reads each token's own sequence through its block table.
 */
public final class CpuLlamaRunner implements ModelRunner {
  private final LlamaConfig c;
  private final float[] embedding; // [vocab][hidden], rows looked up by token
  private final CpuLayer[] layers;
  private final float[] finalNorm;
  private final PackedMatrix lmHead;
  private final ModelSpec spec;
  private final HostKvPool kv;
  private final double[] inverseFrequencies;
  private final ForkJoinPool pool;
  private final CpuMath math;

  /** One block's weights, matrices packed for {@link CpuMath#matmul}. */
  private static final class CpuLayer {
    float[] attentionNorm;
    PackedMatrix wq;
    PackedMatrix wk;
    PackedMatrix wv;
    PackedMatrix wo;
    float[] bq;
    float[] bk;
    float[] bv;
    float[] bo;
    float[] mlpNorm;
    PackedMatrix wGate;
    PackedMatrix wUp;
    PackedMatrix wDown;
    float[] bGate;
    float[] bUp;
    float[] bDown;
  }

  /** Copies (packs) the weights; {@code weights} stays usable. */
  public CpuLlamaRunner(LlamaWeights weights, KvPoolSpec kvPool, int threads) {
    this(weights, kvPool, threads, false);
  }

  /**
   * With {@code consume}, each layer is dropped from {@code weights} once packed, so a large model
   * is never held twice.
   */
  private CpuLlamaRunner(LlamaWeights weights, KvPoolSpec kvPool, int threads, boolean consume) {
    this.c = weights.config;
    int dim = c.hiddenSize();
    int ff = c.intermediateSize();
    this.embedding = weights.embedding;
    this.finalNorm = weights.finalNorm;
    this.layers = new CpuLayer[c.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      LlamaWeights.Layer l = weights.layers[i];
      CpuLayer t = new CpuLayer();
      t.attentionNorm = l.attentionNorm;
      t.mlpNorm = l.mlpNorm;
      t.bq = l.bq;
      t.bk = l.bk;
      t.bv = l.bv;
      t.bo = l.bo;
      t.bGate = l.bGate;
      t.bUp = l.bUp;
      t.bDown = l.bDown;
      t.wq = pack(l.wq, c.queryDim(), dim, threads);
      t.wk = pack(l.wk, c.kvDim(), dim, threads);
      t.wv = pack(l.wv, c.kvDim(), dim, threads);
      t.wo = pack(l.wo, dim, c.queryDim(), threads);
      t.wGate = pack(l.wGate, ff, dim, threads);
      t.wUp = pack(l.wUp, ff, dim, threads);
      t.wDown = pack(l.wDown, dim, ff, threads);
      if (consume) {
        weights.layers[i] = null;
      }
      layers[i] = t;
    }
    this.lmHead = pack(weights.lmHead, c.vocabSize(), dim, threads);
    this.spec = ModelSpec.of(c);
    this.kv = new HostKvPool(kvPool, c.numLayers(), c.kvDim());
    this.inverseFrequencies = c.inverseFrequencies();
    this.pool = new ForkJoinPool(Math.max(1, threads));
    this.math = new CpuMath(pool);
  }

  /** Loads a Hugging Face model directory, using every available core. */
  public static CpuLlamaRunner open(Path modelDirectory, KvPoolSpec kvPool) {
    return open(modelDirectory, kvPool, Runtime.getRuntime().availableProcessors());
  }

  /** Loads a model directory, holding each weight once (packed) rather than twice while loading. */
  public static CpuLlamaRunner open(Path modelDirectory, KvPoolSpec kvPool, int threads) {
    return new CpuLlamaRunner(LlamaWeights.load(modelDirectory), kvPool, threads, true);
  }

  /** A pool of about {@code bytes} of host memory for this model's K and V. */
  public static KvPoolSpec poolFor(LlamaConfig c, long bytes, int blockSize) {
    return HostKvPool.sizedFor(ModelSpec.of(c), bytes, blockSize);
  }

  private static PackedMatrix pack(float[] w, int out, int in, int threads) {
    return PackedMatrix.pack(w, out, in, PackedMatrix.tileWidthFor(out, threads));
  }

  @Override
  public ModelSpec spec() {
    return spec;
  }

  @Override
  public KvPoolSpec kvPool() {
    return kv.spec;
  }

  @Override
  public float[][] forward(List<SequenceChunk> batch) {
    SequenceChunks.validate(batch, spec, kv.spec);
    int dim = c.hiddenSize();
    int qDim = c.queryDim();
    int kvDim = c.kvDim();
    int ff = c.intermediateSize();

    // Flatten the step: token n belongs to chunk owner[n] at absolute position positions[n].
    int n = 0;
    for (SequenceChunk chunk : batch) {
      n += chunk.tokens().length;
    }
    int[] owner = new int[n];
    int[] positions = new int[n];
    float[] x = new float[n * dim];
    int t = 0;
    for (int s = 0; s < batch.size(); s++) {
      SequenceChunk chunk = batch.get(s);
      for (int i = 0; i < chunk.tokens().length; i++, t++) {
        owner[t] = s;
        positions[t] = chunk.startPosition() + i;
        System.arraycopy(embedding, chunk.tokens()[i] * dim, x, t * dim, dim);
      }
    }
    final int tokens = n;
    float[][] rope = ropeTables(positions);

    float[] xb = new float[n * dim];
    float[] q = new float[n * qDim];
    float[] k = new float[n * kvDim];
    float[] v = new float[n * kvDim];
    float[] att = new float[n * qDim];
    float[] gate = new float[n * ff];
    float[] up = new float[n * ff];

    for (int layer = 0; layer < c.numLayers(); layer++) {
      CpuLayer l = layers[layer];

      // Attention block: x += Wo . attention(rope(Wq xb), rope(Wk xb), Wv xb)
      CpuMath.rmsnorm(xb, x, n, l.attentionNorm, dim, c.rmsNormEps());
      math.matmul(q, xb, n, l.wq, l.bq);
      math.matmul(k, xb, n, l.wk, l.bk);
      math.matmul(v, xb, n, l.wv, l.bv);
      applyRope(q, n, c.numHeads(), rope);
      applyRope(k, n, c.numKvHeads(), rope);
      float[] keyCache = kv.keys[layer];
      float[] valueCache = kv.values[layer];
      for (int i = 0; i < n; i++) {
        int at = kv.offset(batch.get(owner[i]).blockTable(), positions[i]);
        System.arraycopy(k, i * kvDim, keyCache, at, kvDim);
        System.arraycopy(v, i * kvDim, valueCache, at, kvDim);
      }
      math.parallelFor(
          tokens * c.numHeads(),
          job ->
              attend(
                  att,
                  q,
                  job / c.numHeads(),
                  job % c.numHeads(),
                  batch.get(owner[job / c.numHeads()]).blockTable(),
                  positions[job / c.numHeads()],
                  keyCache,
                  valueCache));
      math.matmul(xb, att, n, l.wo, l.bo);
      addInPlace(x, xb);

      // MLP block: x += Wdown . (silu(Wgate xb) * Wup xb)
      CpuMath.rmsnorm(xb, x, n, l.mlpNorm, dim, c.rmsNormEps());
      math.matmul(gate, xb, n, l.wGate, l.bGate);
      math.matmul(up, xb, n, l.wUp, l.bUp);
      for (int i = 0; i < gate.length; i++) {
        gate[i] = CpuMath.silu(gate[i]) * up[i];
      }
      math.matmul(xb, gate, n, l.wDown, l.bDown);
      addInPlace(x, xb);
    }

    return logits(batch, x);
  }

  /** Final norm and lm_head on the last {@code numLogits} tokens of each chunk. */
  private float[][] logits(List<SequenceChunk> batch, float[] x) {
    int dim = c.hiddenSize();
    int vocab = c.vocabSize();
    int wanted = 0;
    for (SequenceChunk chunk : batch) {
      wanted += chunk.numLogits();
    }
    float[][] result = new float[batch.size()][];
    if (wanted == 0) {
      return result;
    }
    float[] last = new float[wanted * dim];
    int row = 0;
    int end = 0;
    for (SequenceChunk chunk : batch) {
      end += chunk.tokens().length;
      int m = chunk.numLogits();
      System.arraycopy(x, (end - m) * dim, last, row * dim, m * dim);
      row += m;
    }
    float[] normed = new float[wanted * dim];
    CpuMath.rmsnorm(normed, last, wanted, finalNorm, dim, c.rmsNormEps());
    float[] all = new float[wanted * vocab];
    math.matmul(all, normed, wanted, lmHead, null);
    row = 0;
    for (int s = 0; s < batch.size(); s++) {
      int m = batch.get(s).numLogits();
      if (m > 0) {
        result[s] = java.util.Arrays.copyOfRange(all, row * vocab, (row + m) * vocab);
        row += m;
      }
    }
    return result;
  }

  /** One query head of one token against every earlier position of its sequence. */
  private void attend(
      float[] att,
      float[] q,
      int token,
      int head,
      int[] blockTable,
      int position,
      float[] keyCache,
      float[] valueCache) {
    int hd = c.headDim();
    int kvHead = head / c.groupSize();
    int qAt = token * c.queryDim() + head * hd;
    int first = c.slidingWindow() > 0 ? Math.max(0, position - c.slidingWindow() + 1) : 0;
    int count = position - first + 1;
    float[] scores = new float[count];
    float scale = (float) (1.0 / Math.sqrt(hd));
    for (int p = first; p <= position; p++) {
      int kAt = kv.offset(blockTable, p) + kvHead * hd;
      scores[p - first] = CpuMath.dot(q, qAt, keyCache, kAt, hd) * scale;
    }
    CpuMath.softmax(scores, count);
    int outAt = token * c.queryDim() + head * hd;
    java.util.Arrays.fill(att, outAt, outAt + hd, 0f);
    for (int p = first; p <= position; p++) {
      float a = scores[p - first];
      int vAt = kv.offset(blockTable, p) + kvHead * hd;
      for (int i = 0; i < hd; i++) {
        att[outAt + i] += a * valueCache[vAt + i];
      }
    }
  }

  /** cos and sin of every token's rotary angles, {@code [token][headDim/2]} each. */
  private float[][] ropeTables(int[] positions) {
    int half = c.headDim() / 2;
    float[] cos = new float[positions.length * half];
    float[] sin = new float[positions.length * half];
    for (int t = 0; t < positions.length; t++) {
      for (int i = 0; i < half; i++) {
        double angle = positions[t] * inverseFrequencies[i];
        cos[t * half + i] = (float) Math.cos(angle);
        sin[t * half + i] = (float) Math.sin(angle);
      }
    }
    return new float[][] {cos, sin};
  }

  /** Rotates the two halves of each head (the Hugging Face "rotate_half" layout). */
  private void applyRope(float[] vectors, int tokens, int heads, float[][] rope) {
    int hd = c.headDim();
    int half = hd / 2;
    float[] cos = rope[0];
    float[] sin = rope[1];
    for (int t = 0; t < tokens; t++) {
      for (int h = 0; h < heads; h++) {
        int at = (t * heads + h) * hd;
        for (int i = 0; i < half; i++) {
          float a = vectors[at + i];
          float b = vectors[at + half + i];
          float co = cos[t * half + i];
          float si = sin[t * half + i];
          vectors[at + i] = a * co - b * si;
          vectors[at + half + i] = b * co + a * si;
        }
      }
    }
  }

  private static void addInPlace(float[] x, float[] delta) {
    for (int i = 0; i < x.length; i++) {
      x[i] += delta[i];
    }
  }

  @Override
  public void close() {
    pool.shutdown();
  }
}
