package io.kiln.execution.llm.gpu;

import io.kiln.cuda.Cuda;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.safetensors.SafetensorsModel;
import java.util.Arrays;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;

/**
 * A Llama model's weights in device memory, in the storage type: the embedding table, per layer the
 * QKV, output, gate/up and down matrices (with their biases where the model has them) and the two
 * RMSNorm weights, the final norm, the LM head, and the RoPE cos/sin tables. Norm weights are
 * always fp32.
 *
 * <p>With fused norms each layer norm's weight g is folded into the matrices that read the norm's
 * output (column j times g[j]), and the layer's norm weight on the device is a shared vector of
 * ones; the final norm keeps its weight, since the LM head may be the embedding table too.
 */
final class DeviceWeights {
  /** One decoder layer: fused QKV and gate/up matrices, as the products read them. */
  static final class Layer {
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

  final DeviceBuffer embedding;
  final Layer[] layers;
  final DeviceBuffer finalNorm;
  final DeviceBuffer lmHead;
  final DeviceBuffer ropeCos;
  final DeviceBuffer ropeSin;

  private DeviceWeights(
      DeviceBuffer embedding,
      Layer[] layers,
      DeviceBuffer finalNorm,
      DeviceBuffer lmHead,
      DeviceBuffer ropeCos,
      DeviceBuffer ropeSin) {
    this.embedding = embedding;
    this.layers = layers;
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
    this.ropeCos = ropeCos;
    this.ropeSin = ropeSin;
  }

  /**
   * Reads every tensor of {@code weights} as fp32 and stores it on the device in {@code storage}
   * (cast on the device for fp16, through a staging buffer freed at the end); {@code maxPositions}
   * sizes the RoPE tables. Waits for the uploads to finish.
   */
  static DeviceWeights upload(
      LlamaConfig config,
      SafetensorsModel weights,
      StorageType storage,
      boolean fusedNorms,
      int maxPositions,
      DeviceMemory memory,
      Kernels kernels,
      CUstream_st stream) {
    long h = config.hiddenSize();
    long vocab = config.vocabSize();
    int qDim = config.queryDim();
    int kvDim = config.kvDim();
    int qkvDim = qDim + 2 * kvDim;
    int ff = config.intermediateSize();
    long staging = Math.max(vocab * h, Math.max(2L * ff * h, (long) qkvDim * h));
    DeviceBuffer stage = storage == StorageType.F16 ? memory.alloc(4 * staging) : null;
    try {
      Uploader up = new Uploader(weights, stage, storage, fusedNorms, memory, kernels, stream);
      DeviceBuffer embedding = memory.alloc(vocab * h * storage.bytes);
      up.matrix(embedding, 0, "model.embed_tokens.weight", vocab, h);
      if (fusedNorms) {
        float[] ones = new float[(int) h];
        Arrays.fill(ones, 1f);
        up.unitNorm = memory.alloc(4 * h);
        up.unitNorm.upload(ones);
      }
      Layer[] layers = new Layer[config.numLayers()];
      for (int i = 0; i < layers.length; i++) {
        String p = "model.layers." + i + ".";
        Layer l = new Layer();
        float[] g = up.normWeight(p + "input_layernorm.weight", h);
        l.attentionNorm = up.norm(g);
        l.wqkv = memory.alloc((long) qkvDim * h * storage.bytes);
        up.normedMatrix(l.wqkv, 0, p + "self_attn.q_proj.weight", g, qDim, h);
        up.normedMatrix(l.wqkv, (long) qDim * h, p + "self_attn.k_proj.weight", g, kvDim, h);
        up.normedMatrix(
            l.wqkv, (long) (qDim + kvDim) * h, p + "self_attn.v_proj.weight", g, kvDim, h);
        if (config.qkvBias()) {
          l.bqkv = memory.alloc((long) qkvDim * storage.bytes);
          up.matrix(l.bqkv, 0, p + "self_attn.q_proj.bias", qDim);
          up.matrix(l.bqkv, qDim, p + "self_attn.k_proj.bias", kvDim);
          up.matrix(l.bqkv, qDim + kvDim, p + "self_attn.v_proj.bias", kvDim);
        }
        l.wo = memory.alloc(h * qDim * storage.bytes);
        up.matrix(l.wo, 0, p + "self_attn.o_proj.weight", h, qDim);
        if (config.outputBias()) {
          l.bo = memory.alloc(h * storage.bytes);
          up.matrix(l.bo, 0, p + "self_attn.o_proj.bias", h);
        }
        g = up.normWeight(p + "post_attention_layernorm.weight", h);
        l.mlpNorm = up.norm(g);
        l.wGateUp = memory.alloc(2L * ff * h * storage.bytes);
        up.normedMatrix(l.wGateUp, 0, p + "mlp.gate_proj.weight", g, ff, h);
        up.normedMatrix(l.wGateUp, (long) ff * h, p + "mlp.up_proj.weight", g, ff, h);
        l.wDown = memory.alloc(h * ff * storage.bytes);
        up.matrix(l.wDown, 0, p + "mlp.down_proj.weight", h, ff);
        if (config.mlpBias()) {
          l.bGateUp = memory.alloc(2L * ff * storage.bytes);
          up.matrix(l.bGateUp, 0, p + "mlp.gate_proj.bias", ff);
          up.matrix(l.bGateUp, ff, p + "mlp.up_proj.bias", ff);
          l.bDown = memory.alloc(h * storage.bytes);
          up.matrix(l.bDown, 0, p + "mlp.down_proj.bias", h);
        }
        layers[i] = l;
      }
      // The final norm keeps its weight: the LM head may be the embedding table too.
      DeviceBuffer finalNorm = up.vector(up.normWeight("model.norm.weight", h));
      DeviceBuffer lmHead;
      if (weights.contains("lm_head.weight")) {
        lmHead = memory.alloc(vocab * h * storage.bytes);
        up.matrix(lmHead, 0, "lm_head.weight", vocab, h);
      } else if (config.tieWordEmbeddings()) {
        lmHead = embedding;
      } else {
        throw new io.kiln.ModelException(
            "missing tensor 'lm_head.weight' in "
                + weights.directory()
                + " (tie_word_embeddings is false)");
      }
      DeviceBuffer[] rope = uploadRopeTables(config, maxPositions, memory);
      sync(stream);
      return new DeviceWeights(embedding, layers, finalNorm, lmHead, rope[0], rope[1]);
    } finally {
      memory.free(stage);
    }
  }

  /**
   * cos and sin of every position's rotary angles, computed in double like the CPU runner: two
   * tables [position][headDim / 2].
   */
  private static DeviceBuffer[] uploadRopeTables(
      LlamaConfig config, int positions, DeviceMemory memory) {
    int half = config.headDim() / 2;
    double[] inv = config.inverseFrequencies();
    float[] cos = new float[positions * half];
    float[] sin = new float[positions * half];
    for (int p = 0; p < positions; p++) {
      for (int i = 0; i < half; i++) {
        double angle = p * inv[i];
        cos[p * half + i] = (float) Math.cos(angle);
        sin[p * half + i] = (float) Math.sin(angle);
      }
    }
    DeviceBuffer cosTable = memory.alloc(4L * cos.length);
    DeviceBuffer sinTable = memory.alloc(4L * sin.length);
    cosTable.upload(cos);
    sinTable.upload(sin);
    return new DeviceBuffer[] {cosTable, sinTable};
  }

  private static void sync(CUstream_st stream) {
    Cuda.check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

  /** Reads tensors as fp32 and stores them in the storage type (cast on the device for fp16). */
  private static final class Uploader {
    final SafetensorsModel weights;
    final DeviceBuffer stage;
    final StorageType storage;
    final boolean fusedNorms;
    final DeviceMemory memory;
    final Kernels kernels;
    final CUstream_st stream;

    /** The layer norms' shared weight of ones where the norms are folded into the products. */
    DeviceBuffer unitNorm;

    Uploader(
        SafetensorsModel weights,
        DeviceBuffer stage,
        StorageType storage,
        boolean fusedNorms,
        DeviceMemory memory,
        Kernels kernels,
        CUstream_st stream) {
      this.weights = weights;
      this.stage = stage;
      this.storage = storage;
      this.fusedNorms = fusedNorms;
      this.memory = memory;
      this.kernels = kernels;
      this.stream = stream;
    }

    /** Copies a tensor to {@code elementOffset} elements into {@code dst}. */
    void matrix(DeviceBuffer dst, long elementOffset, String name, long... shape) {
      store(dst, elementOffset, weights.readFloats(name, shape));
    }

    /**
     * A [rows, cols] weight that reads the output of the RMSNorm with weight {@code g}. With fused
     * norms g is folded in (column j times g[j]) and the norm itself runs with unit weight.
     */
    void normedMatrix(
        DeviceBuffer dst, long elementOffset, String name, float[] g, long rows, long cols) {
      float[] data = weights.readFloats(name, rows, cols);
      if (fusedNorms) {
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
      if (storage == StorageType.F32) {
        dst.upload(data, 4 * elementOffset);
      } else {
        stage.upload(data);
        long out = dst.address(2 * elementOffset);
        dst.address(2 * (elementOffset + data.length));
        kernels.castToHalf(stream, out, stage.address(), (long) data.length);
        sync(stream);
      }
    }

    float[] normWeight(String name, long size) {
      return weights.readFloats(name, size);
    }

    /** The layer norm's device weight: g, or ones where g is folded into the products. */
    DeviceBuffer norm(float[] g) {
      return fusedNorms ? unitNorm : vector(g);
    }

    DeviceBuffer vector(float[] v) {
      DeviceBuffer buffer = memory.alloc(4L * v.length);
      buffer.upload(v);
      return buffer;
    }
  }
}
