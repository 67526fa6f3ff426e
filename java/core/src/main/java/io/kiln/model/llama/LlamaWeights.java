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
    float[] embedding = st.readFloats("model.embed_tokens.weight", c.vocabSize(), h);
    Layer[] layers = new Layer[c.numLayers()];
    for (int i = 0; i < layers.length; i++) {
      String p = "model.layers." + i + ".";
      Layer l = new Layer();
      l.attentionNorm = st.readFloats(p + "input_layernorm.weight", h);
      l.wq = st.readFloats(p + "self_attn.q_proj.weight", q, h);
      l.wk = st.readFloats(p + "self_attn.k_proj.weight", kv, h);
      l.wv = st.readFloats(p + "self_attn.v_proj.weight", kv, h);
      l.wo = st.readFloats(p + "self_attn.o_proj.weight", h, q);
      if (c.qkvBias()) {
        l.bq = st.readFloats(p + "self_attn.q_proj.bias", q);
        l.bk = st.readFloats(p + "self_attn.k_proj.bias", kv);
        l.bv = st.readFloats(p + "self_attn.v_proj.bias", kv);
      }
      if (c.outputBias()) {
        l.bo = st.readFloats(p + "self_attn.o_proj.bias", h);
      }
      l.mlpNorm = st.readFloats(p + "post_attention_layernorm.weight", h);
      l.wGate = st.readFloats(p + "mlp.gate_proj.weight", ff, h);
      l.wUp = st.readFloats(p + "mlp.up_proj.weight", ff, h);
      l.wDown = st.readFloats(p + "mlp.down_proj.weight", h, ff);
      if (c.mlpBias()) {
        l.bGate = st.readFloats(p + "mlp.gate_proj.bias", ff);
        l.bUp = st.readFloats(p + "mlp.up_proj.bias", ff);
        l.bDown = st.readFloats(p + "mlp.down_proj.bias", h);
      }
      layers[i] = l;
    }
    float[] finalNorm = st.readFloats("model.norm.weight", h);
    float[] lmHead;
    if (st.contains("lm_head.weight")) {
      lmHead = st.readFloats("lm_head.weight", c.vocabSize(), h);
    } else if (c.tieWordEmbeddings()) {
      lmHead = embedding;
    } else {
      throw new ModelException(
          "missing tensor 'lm_head.weight' in "
              + st.directory()
              + " (tie_word_embeddings is false)");
    }
    return new LlamaWeights(c, embedding, layers, finalNorm, lmHead);
  }
}
