package io.kiln.model.llama;

import io.kiln.ModelException;
import io.kiln.model.safetensors.SafetensorsModel;
import java.nio.file.Path;

/**
 * All weights of a Llama-family decoder as float32, matrices row-major {@code [out][in]} as Hugging
 * Face stores them. Biases are null where the model has none.
 */
public final class LlamaWeights {
  /** One transformer block. */
  public static final class Layer {
    public float[] attentionNorm; // [hidden]
    public float[] wq; // [heads * headDim][hidden]
    public float[] wk; // [kvHeads * headDim][hidden]
    public float[] wv; // [kvHeads * headDim][hidden]
    public float[] wo; // [hidden][heads * headDim]
    public float[] bq;
    public float[] bk;
    public float[] bv;
    public float[] bo;
    public float[] mlpNorm; // [hidden]
    public float[] wGate; // [intermediate][hidden]
    public float[] wUp; // [intermediate][hidden]
    public float[] wDown; // [hidden][intermediate]
    public float[] bGate;
    public float[] bUp;
    public float[] bDown;
  }

  public final LlamaConfig config;
  public final float[] embedding; // [vocab][hidden]
  public final Layer[] layers;
  public final float[] finalNorm; // [hidden]
  public final float[] lmHead; // [vocab][hidden]; the embedding itself when tied

  private LlamaWeights(
      LlamaConfig config, float[] embedding, Layer[] layers, float[] finalNorm, float[] lmHead) {
    this.config = config;
    this.embedding = embedding;
    this.layers = layers;
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
  }

  /** Loads {@code config.json} and the safetensors weights of a model directory. */
  public static LlamaWeights load(Path modelDirectory) {
    LlamaConfig config = LlamaConfig.load(modelDirectory);
    try (SafetensorsModel st = SafetensorsModel.open(modelDirectory)) {
      return load(config, st);
    }
  }

  public static LlamaWeights load(LlamaConfig c, SafetensorsModel st) {
    long h = c.hiddenSize();
    long q = c.queryDim();
    long kv = c.kvDim();
    long ff = c.intermediateSize();
    float[] embedding = st.readFloats(LlamaTensors.embedding(), c.vocabSize(), h);
    Layer[] layers = new Layer[c.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      LlamaTensors.Layer names = LlamaTensors.layer(i);
      Layer l = new Layer();
      l.attentionNorm = st.readFloats(names.attentionNorm(), h);
      l.wq = LinearWeights.read(st, names.qProj(), q, h);
      l.wk = LinearWeights.read(st, names.kProj(), kv, h);
      l.wv = LinearWeights.read(st, names.vProj(), kv, h);
      l.wo = LinearWeights.read(st, names.oProj(), h, q);
      if (c.qkvBias()) {
        l.bq = st.readFloats(names.qProjBias(), q);
        l.bk = st.readFloats(names.kProjBias(), kv);
        l.bv = st.readFloats(names.vProjBias(), kv);
      }
      if (c.outputBias()) {
        l.bo = st.readFloats(names.oProjBias(), h);
      }
      l.mlpNorm = st.readFloats(names.mlpNorm(), h);
      l.wGate = LinearWeights.read(st, names.gateProj(), ff, h);
      l.wUp = LinearWeights.read(st, names.upProj(), ff, h);
      l.wDown = LinearWeights.read(st, names.downProj(), h, ff);
      if (c.mlpBias()) {
        l.bGate = st.readFloats(names.gateProjBias(), ff);
        l.bUp = st.readFloats(names.upProjBias(), ff);
        l.bDown = st.readFloats(names.downProjBias(), h);
      }
      layers[i] = l;
    }
    float[] finalNorm = st.readFloats(LlamaTensors.finalNorm(), h);
    float[] lmHead;
    if (st.contains(LlamaTensors.lmHead())) {
      lmHead = LinearWeights.read(st, LlamaTensors.lmHead(), c.vocabSize(), h);
    } else if (c.tieWordEmbeddings()) {
      lmHead = embedding;
    } else {
      throw new ModelException(
          "missing tensor '"
              + LlamaTensors.lmHead()
              + "' in "
              + st.directory()
              + " (tie_word_embeddings is false)");
    }
    return new LlamaWeights(c, embedding, layers, finalNorm, lmHead);
  }
}
