package io.kiln.execution.llm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.Backend;
import io.kiln.BackendException;
import io.kiln.DType;
import io.kiln.Device;
import io.kiln.ModelException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.session.Session;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a decoder ONNX graph with the Hugging Face Optimum interface (Kiln's export or Optimum's)
 * through a Kiln {@link Session} on ONNX Runtime CPU. The graph takes K/V as contiguous past
 * tensors per sequence; this runner keeps them in a paged host pool between steps and gathers each
 * sequence's past through its block table, so prefix sharing and preemption work as with any
 * runner. Chunks of equal length run as one ONNX batch, past lengths padded on the left and masked;
 * a first chunk gets one masked padding position since sessions reject empty tensors.
 */
public final class OnnxDecoderRunner implements ModelRunner {
  private final Session session;
  private final ModelSpec spec;
  private final HostKvPool kv;
  private final boolean hasPositionIds;

  private OnnxDecoderRunner(
      Session session, ModelSpec spec, KvPoolSpec pool, boolean hasPositionIds) {
    this.session = session;
    this.spec = spec;
    this.kv = new HostKvPool(pool, spec.numLayers(), spec.numKvHeads() * spec.headDim());
    this.hasPositionIds = hasPositionIds;
  }

  /**
   * Opens {@code model.onnx} (a file, or a directory holding it). Context length and EOS come from
   * a config.json beside it when present.
   */
  public static OnnxDecoderRunner open(Path model, KvPoolSpec pool, int threads) {
    Path file = Files.isDirectory(model) ? model.resolve("model.onnx") : model;
    if (!Files.isRegularFile(file)) {
      throw new ModelException("ONNX decoder not found: " + file);
    }
    Session session =
        Session.builder(file)
            .backend(Backend.ONNXRUNTIME)
            .device(Device.CPU)
            .intraOpThreads(Math.max(1, threads))
            .checkFinite(false) // past K/V come from this runner's own pool
            .dynamicBatching(false) // this runner forms its own batches
            .kvCache(true)
            .build();
    try {
      ModelSpec spec = inspect(session, file);
      boolean positions = session.inputs().stream().anyMatch(i -> i.name().equals("position_ids"));
      return new OnnxDecoderRunner(session, spec, pool, positions);
    } catch (RuntimeException e) {
      session.close();
      throw e;
    }
  }

  private static ModelSpec inspect(Session session, Path file) {
    Map<String, TensorInfo> inputs = new HashMap<>();
    session.inputs().forEach(i -> inputs.put(i.name(), i));
    for (String required : List.of("input_ids", "attention_mask", "past_key_values.0.key")) {
      if (!inputs.containsKey(required)) {
        throw new ModelException(
            file + " is not a decoder with KV cache: it has no input '" + required + "'");
      }
    }
    int layers = 0;
    while (inputs.containsKey("past_key_values." + layers + ".key")) {
      layers++;
    }
    TensorInfo past = inputs.get("past_key_values.0.key");
    long[] pastShape = past.dims();
    if (past.dtype() != DType.F32
        || pastShape.length != 4
        || pastShape[1] <= 0
        || pastShape[3] <= 0) {
      throw new ModelException(
          file
              + ": past_key_values must be float32 [batch, kv_heads, past, head_dim] with fixed"
              + " heads, got "
              + past);
    }
    TensorInfo logits =
        session.outputs().stream()
            .filter(o -> o.name().equals("logits"))
            .findFirst()
            .orElseThrow(() -> new ModelException(file + " has no output 'logits'"));
    long vocab = logits.dims()[logits.rank() - 1];
    if (vocab <= 0) {
      throw new ModelException(file + ": logits need a fixed vocabulary dimension");
    }
    int maxPositions = Integer.MAX_VALUE;
    int eos = -1;
    Path config = file.resolveSibling("config.json");
    if (Files.isRegularFile(config)) {
      try {
        JsonNode c = new ObjectMapper().readTree(config.toFile());
        maxPositions = c.path("max_position_embeddings").asInt(maxPositions);
        JsonNode e = c.path("eos_token_id");
        eos = e.isArray() ? (e.size() > 0 ? e.get(0).asInt() : -1) : e.asInt(-1);
      } catch (IOException ex) {
        throw new ModelException("cannot parse " + config + ": " + ex.getMessage(), ex);
      }
    }
    return new ModelSpec(
        layers, (int) pastShape[1], (int) pastShape[3], (int) vocab, maxPositions, eos);
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
    // Equal-length chunks share one ONNX call; a graph without position_ids runs one at a time.
    Map<Integer, List<Integer>> groups = new LinkedHashMap<>();
    for (int i = 0; i < batch.size(); i++) {
      int key = hasPositionIds ? batch.get(i).tokens().length : -1 - i;
      groups.computeIfAbsent(key, x -> new ArrayList<>()).add(i);
    }
    float[][] result = new float[batch.size()][];
    for (List<Integer> group : groups.values()) {
      List<SequenceChunk> chunks = new ArrayList<>();
      group.forEach(i -> chunks.add(batch.get(i)));
      float[][] logits = run(chunks);
      for (int j = 0; j < group.size(); j++) {
        result[group.get(j)] = logits[j];
      }
    }
    return result;
  }

  /** One ONNX call over chunks of the same length. */
  private float[][] run(List<SequenceChunk> chunks) {
    int b = chunks.size();
    int seq = chunks.get(0).tokens().length;
    int past = 1;
    for (SequenceChunk c : chunks) {
      past = Math.max(past, c.startPosition());
    }
    int total = past + seq;

    long[] ids = new long[b * seq];
    long[] positions = new long[b * seq];
    long[] mask = new long[b * total];
    for (int s = 0; s < b; s++) {
      SequenceChunk c = chunks.get(s);
      int pad = past - c.startPosition();
      for (int t = 0; t < seq; t++) {
        ids[s * seq + t] = c.tokens()[t];
        positions[s * seq + t] = c.startPosition() + t;
      }
      for (int t = pad; t < total; t++) {
        mask[s * total + t] = 1;
      }
    }
    Map<String, Tensor> inputs = new LinkedHashMap<>();
    try {
      inputs.put("input_ids", Tensor.of(ids, b, seq));
      inputs.put("attention_mask", Tensor.of(mask, b, total));
      if (hasPositionIds) {
        inputs.put("position_ids", Tensor.of(positions, b, seq));
      }
      for (int layer = 0; layer < spec.numLayers(); layer++) {
        inputs.put("past_key_values." + layer + ".key", gather(kv.keys[layer], chunks, past));
        inputs.put("past_key_values." + layer + ".value", gather(kv.values[layer], chunks, past));
      }
      try (Session.Result out = session.infer(inputs)) {
        for (int layer = 0; layer < spec.numLayers(); layer++) {
          scatter(out.get("present." + layer + ".key"), kv.keys[layer], chunks, past, total);
          scatter(out.get("present." + layer + ".value"), kv.values[layer], chunks, past, total);
        }
        float[] logits = out.get("logits").toFloatArray();
        int vocab = spec.vocabSize();
        int rows = logits.length / vocab;
        float[][] result = new float[b][];
        for (int s = 0; s < b; s++) {
          int m = chunks.get(s).numLogits();
          if (m == 0) {
            continue;
          }
          // Some exports return only the last position; Kiln's returns every position.
          if (rows == b && m > 1) {
            throw new BackendException(
                "this decoder returns only the last position's logits; it cannot verify "
                    + m
                    + " positions at once");
          }
          int row = rows == b ? s : s * seq + seq - m;
          result[s] = java.util.Arrays.copyOfRange(logits, row * vocab, (row + m) * vocab);
        }
        return result;
      }
    } finally {
      inputs.values().forEach(Tensor::close);
    }
  }

  /** Past K or V of each chunk, [batch, kvHeads, past, headDim], left-padded with zeros. */
  private Tensor gather(float[] pool, List<SequenceChunk> chunks, int past) {
    int heads = spec.numKvHeads();
    int hd = spec.headDim();
    float[] out = new float[chunks.size() * heads * past * hd];
    for (int s = 0; s < chunks.size(); s++) {
      SequenceChunk c = chunks.get(s);
      int pad = past - c.startPosition();
      for (int p = 0; p < c.startPosition(); p++) {
        int from = kv.offset(c.blockTable(), p);
        for (int h = 0; h < heads; h++) {
          System.arraycopy(pool, from + h * hd, out, ((s * heads + h) * past + pad + p) * hd, hd);
        }
      }
    }
    return Tensor.of(out, chunks.size(), heads, past, hd);
  }

  /** Copies the new positions of present K or V into each chunk's blocks. */
  private void scatter(
      Tensor present, float[] pool, List<SequenceChunk> chunks, int past, int total) {
    int heads = spec.numKvHeads();
    int hd = spec.headDim();
    if (present == null || present.elementCount() != (long) chunks.size() * heads * total * hd) {
      throw new BackendException(
          "decoder returned present K/V of shape "
              + (present == null ? "none" : java.util.Arrays.toString(present.shape()))
              + ", expected ["
              + chunks.size()
              + ", "
              + heads
              + ", "
              + total
              + ", "
              + hd
              + "]");
    }
    float[] values = present.toFloatArray();
    for (int s = 0; s < chunks.size(); s++) {
      SequenceChunk c = chunks.get(s);
      for (int t = 0; t < c.tokens().length; t++) {
        int to = kv.offset(c.blockTable(), c.startPosition() + t);
        for (int h = 0; h < heads; h++) {
          System.arraycopy(
              values, ((s * heads + h) * total + past + t) * hd, pool, to + h * hd, hd);
        }
      }
    }
  }

  @Override
  public void close() {
    session.close();
  }
}
