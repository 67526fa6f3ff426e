package io.kiln.execution.llm.gpu;

import io.kiln.InvalidInputException;
import io.kiln.cuda.Cuda;
import io.kiln.model.llama.LinearWeights;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.LlamaTensors;
import io.kiln.model.llama.WeightQuantizer;
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
 *
 * <p>An int8 LM head ({@link #lmHeadInt8}) is a second copy of the head, for the steps of few
 * logits rows that read it instead; the storage-type head stays for larger steps (cuBLAS).
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

  /** The LM head as int8 codes, or null. */
  final Int8Matrix lmHeadInt8;

  final DeviceBuffer ropeCos;
  final DeviceBuffer ropeSin;

  private DeviceWeights(
      DeviceBuffer embedding,
      Layer[] layers,
      DeviceBuffer finalNorm,
      DeviceBuffer lmHead,
      Int8Matrix lmHeadInt8,
      DeviceBuffer ropeCos,
      DeviceBuffer ropeSin) {
    this.embedding = embedding;
    this.layers = layers;
    this.finalNorm = finalNorm;
    this.lmHead = lmHead;
    this.lmHeadInt8 = lmHeadInt8;
    this.ropeCos = ropeCos;
    this.ropeSin = ropeSin;
  }

  /**
   * Reads every tensor of {@code weights} as fp32 and stores it on the device in {@code storage}
   * (cast on the device for fp16, through a staging buffer freed at the end); {@code maxPositions}
   * sizes the RoPE tables; {@code int8LmHead} adds the int8 copy of the LM head. Waits for the
   * uploads to finish.
   */
  static DeviceWeights upload(
      LlamaConfig config,
      SafetensorsModel weights,
      StorageType storage,
      boolean fusedNorms,
      boolean int8LmHead,
      int maxPositions,
      DeviceMemory memory,
      Kernels kernels,
      CUstream_st stream) {
    long hidden = config.hiddenSize();
    long vocab = config.vocabSize();
    int qDim = config.queryDim();
    int kvDim = config.kvDim();
    int qkvDim = qDim + 2 * kvDim;
    int ff = config.intermediateSize();
    if (int8LmHead && hidden % SkinnyGemm.INT8_VECTOR != 0) {
      throw new InvalidInputException(
          "the int8 LM head reads rows in vectors of "
              + SkinnyGemm.INT8_VECTOR
              + " codes: hidden size "
              + hidden
              + " is not a multiple");
    }
    long staging = Math.max(vocab * hidden, Math.max(2L * ff * hidden, (long) qkvDim * hidden));
    DeviceBuffer stage = storage == StorageType.F16 ? memory.alloc(4 * staging) : null;
    try {
      Uploader uploader =
          new Uploader(weights, stage, storage, fusedNorms, memory, kernels, stream);
      DeviceBuffer embedding = memory.alloc(vocab * hidden * storage.bytes);
      uploader.matrix(embedding, 0, LlamaTensors.embedding(), vocab, hidden);
      if (fusedNorms) {
        float[] ones = new float[(int) hidden];
        Arrays.fill(ones, 1f);
        uploader.unitNorm = memory.alloc(4 * hidden);
        uploader.unitNorm.upload(ones);
      }
      Layer[] layers = new Layer[config.numLayers()];
      for (int i = 0; i < layers.length; i++) {
        LlamaTensors.Layer names = LlamaTensors.layer(i);
        Layer layer = new Layer();
        float[] norm = uploader.normWeight(names.attentionNorm(), hidden);
        layer.attentionNorm = uploader.norm(norm);
        layer.wqkv = memory.alloc((long) qkvDim * hidden * storage.bytes);
        uploader.normedMatrix(layer.wqkv, 0, names.qProj(), norm, qDim, hidden);
        uploader.normedMatrix(layer.wqkv, (long) qDim * hidden, names.kProj(), norm, kvDim, hidden);
        uploader.normedMatrix(
            layer.wqkv, (long) (qDim + kvDim) * hidden, names.vProj(), norm, kvDim, hidden);
        if (config.qkvBias()) {
          layer.bqkv = memory.alloc((long) qkvDim * storage.bytes);
          uploader.matrix(layer.bqkv, 0, names.qProjBias(), qDim);
          uploader.matrix(layer.bqkv, qDim, names.kProjBias(), kvDim);
          uploader.matrix(layer.bqkv, qDim + kvDim, names.vProjBias(), kvDim);
        }
        layer.wo = memory.alloc(hidden * qDim * storage.bytes);
        uploader.matrix(layer.wo, 0, names.oProj(), hidden, qDim);
        if (config.outputBias()) {
          layer.bo = memory.alloc(hidden * storage.bytes);
          uploader.matrix(layer.bo, 0, names.oProjBias(), hidden);
        }
        norm = uploader.normWeight(names.mlpNorm(), hidden);
        layer.mlpNorm = uploader.norm(norm);
        layer.wGateUp = memory.alloc(2L * ff * hidden * storage.bytes);
        uploader.normedMatrix(layer.wGateUp, 0, names.gateProj(), norm, ff, hidden);
        uploader.normedMatrix(layer.wGateUp, (long) ff * hidden, names.upProj(), norm, ff, hidden);
        layer.wDown = memory.alloc(hidden * ff * storage.bytes);
        uploader.matrix(layer.wDown, 0, names.downProj(), hidden, ff);
        if (config.mlpBias()) {
          layer.bGateUp = memory.alloc(2L * ff * storage.bytes);
          uploader.matrix(layer.bGateUp, 0, names.gateProjBias(), ff);
          uploader.matrix(layer.bGateUp, ff, names.upProjBias(), ff);
          layer.bDown = memory.alloc(hidden * storage.bytes);
          uploader.matrix(layer.bDown, 0, names.downProjBias(), hidden);
        }
        layers[i] = layer;
      }
      // The final norm keeps its weight: the LM head may be the embedding table too.
      DeviceBuffer finalNorm =
          uploader.vector(uploader.normWeight(LlamaTensors.finalNorm(), hidden));
      DeviceBuffer lmHead;
      String lmHeadName = LlamaTensors.lmHead();
      if (weights.contains(lmHeadName)) {
        lmHead = memory.alloc(vocab * hidden * storage.bytes);
        uploader.matrix(lmHead, 0, lmHeadName, vocab, hidden);
      } else if (config.tieWordEmbeddings()) {
        lmHead = embedding;
        lmHeadName = LlamaTensors.embedding();
      } else {
        throw new io.kiln.ModelException(
            "missing tensor '"
                + LlamaTensors.lmHead()
                + "' in "
                + weights.directory()
                + " (tie_word_embeddings is false)");
      }
      Int8Matrix lmHeadInt8 =
          int8LmHead ? uploader.int8Matrix(lmHeadName, (int) vocab, (int) hidden) : null;
      DeviceBuffer[] rope = uploadRopeTables(config, maxPositions, memory);
      sync(stream);
      return new DeviceWeights(embedding, layers, finalNorm, lmHead, lmHeadInt8, rope[0], rope[1]);
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
      // Projections may be stored as INT8 or FP8 codes with scales; they arrive dequantized.
      store(
          dst,
          elementOffset,
          shape.length == 2
              ? LinearWeights.read(weights, name, shape[0], shape[1])
              : weights.readFloats(name, shape));
    }

    /**
     * A [rows, cols] weight that reads the output of the RMSNorm with weight {@code g}. With fused
     * norms g is folded in (column j times g[j]) and the norm itself runs with unit weight.
     */
    void normedMatrix(
        DeviceBuffer dst, long elementOffset, String name, float[] norm, long rows, long cols) {
      float[] data = LinearWeights.read(weights, name, rows, cols);
      if (fusedNorms) {
        for (int r = 0; r < rows; r++) {
          int at = r * (int) cols;
          for (int j = 0; j < cols; j++) {
            data[at + j] *= norm[j];
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

    /** A [rows, cols] tensor as int8 codes with a scale per row. */
    Int8Matrix int8Matrix(String name, int rows, int cols) {
      float[] scales = new float[rows];
      byte[] codes =
          WeightQuantizer.int8Codes(
              LinearWeights.read(weights, name, rows, cols), rows, cols, scales);
      DeviceBuffer codeBuffer = memory.alloc(codes.length);
      codeBuffer.upload(codes);
      return new Int8Matrix(codeBuffer, vector(scales));
    }

    float[] normWeight(String name, long size) {
      return weights.readFloats(name, size);
    }

    /** The layer norm's device weight: g, or ones where g is folded into the products. */
    DeviceBuffer norm(float[] weight) {
      return fusedNorms ? unitNorm : vector(weight);
    }

    DeviceBuffer vector(float[] values) {
      DeviceBuffer buffer = memory.alloc(4L * values.length);
      buffer.upload(values);
      return buffer;
    }
  }
}
