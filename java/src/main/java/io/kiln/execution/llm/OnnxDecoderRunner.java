package io.kiln.execution.llm;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.BackendException;
import io.kiln.ModelException;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a decoder ONNX graph with the Hugging Face Optimum interface (Kiln's export or Optimum's) on
 * ONNX Runtime CPU. The graph takes K/V as contiguous past tensors per sequence; this runner keeps
 * them in a paged host pool between steps and gathers each sequence's past through its block table,
 * so prefix sharing and preemption work as with any runner. Chunks of equal length run as one ONNX
 * batch (past lengths padded on the left and masked).
 */
public final class OnnxDecoderRunner implements ModelRunner {
  private final OrtEnvironment env;
  private final OrtSession session;
  private final ModelSpec spec;
  private final HostKvPool kv;
  private final boolean hasPositionIds;

  private OnnxDecoderRunner(
      OrtEnvironment env,
      OrtSession session,
      ModelSpec spec,
      KvPoolSpec pool,
      boolean hasPositionIds) {
    this.env = env;
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
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession session = null;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(Math.max(1, threads));
      session = env.createSession(file.toString(), options);
      ModelSpec spec = inspect(session, file);
      boolean positions = session.getInputNames().contains("position_ids");
      return new OnnxDecoderRunner(env, session, spec, pool, positions);
    } catch (OrtException e) {
      closeQuietly(session);
      throw new ModelException("ONNX Runtime cannot load " + file + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      closeQuietly(session);
      throw e;
    }
  }

  private static ModelSpec inspect(OrtSession session, Path file) throws OrtException {
    Map<String, NodeInfo> inputs = session.getInputInfo();
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
    TensorInfo past = (TensorInfo) inputs.get("past_key_values.0.key").getInfo();
    long[] pastShape = past.getShape();
    if (past.type != ai.onnxruntime.OnnxJavaType.FLOAT
        || pastShape.length != 4
        || pastShape[1] <= 0
        || pastShape[3] <= 0) {
      throw new ModelException(
          file
              + ": past_key_values must be float32 [batch, kv_heads, past, head_dim] with fixed heads, got "
              + past.type
              + java.util.Arrays.toString(pastShape));
    }
    NodeInfo logits = session.getOutputInfo().get("logits");
    if (logits == null) {
      throw new ModelException(file + " has no output 'logits'");
    }
    long[] logitsShape = ((TensorInfo) logits.getInfo()).getShape();
    long vocab = logitsShape[logitsShape.length - 1];
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
    int past = 0;
    for (SequenceChunk c : chunks) {
      past = Math.max(past, c.startPosition());
    }
    int total = past + seq;
    int heads = spec.numKvHeads();
    int hd = spec.headDim();

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
    Map<String, OnnxTensor> inputs = new HashMap<>();
    try {
      inputs.put(
          "input_ids", OnnxTensor.createTensor(env, LongBuffer.wrap(ids), new long[] {b, seq}));
      inputs.put(
          "attention_mask",
          OnnxTensor.createTensor(env, LongBuffer.wrap(mask), new long[] {b, total}));
      if (hasPositionIds) {
        inputs.put(
            "position_ids",
            OnnxTensor.createTensor(env, LongBuffer.wrap(positions), new long[] {b, seq}));
      }
      for (int layer = 0; layer < spec.numLayers(); layer++) {
        inputs.put("past_key_values." + layer + ".key", gather(kv.keys[layer], chunks, past));
        inputs.put("past_key_values." + layer + ".value", gather(kv.values[layer], chunks, past));
      }
      try (OrtSession.Result out = session.run(inputs)) {
        for (int layer = 0; layer < spec.numLayers(); layer++) {
          scatter(out, "present." + layer + ".key", kv.keys[layer], chunks, past, total);
          scatter(out, "present." + layer + ".value", kv.values[layer], chunks, past, total);
        }
        FloatBuffer logits = ((OnnxTensor) out.get("logits").orElseThrow()).getFloatBuffer();
        int vocab = spec.vocabSize();
        int rows = logits.capacity() / vocab;
        float[][] result = new float[b][];
        for (int s = 0; s < b; s++) {
          if (chunks.get(s).wantLogits()) {
            result[s] = new float[vocab];
            // Optimum graphs may return only the last position; Kiln's return every position.
            int row = rows == b ? s : s * seq + seq - 1;
            logits.position(row * vocab);
            logits.get(result[s]);
          }
        }
        return result;
      }
    } catch (OrtException e) {
      throw new BackendException("ONNX Runtime decoder step failed: " + e.getMessage(), e);
    } finally {
      inputs.values().forEach(OnnxTensor::close);
    }
  }

  /** Past K or V of each chunk, [batch, kvHeads, past, headDim], left-padded with zeros. */
  private OnnxTensor gather(float[] pool, List<SequenceChunk> chunks, int past)
      throws OrtException {
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
    return OnnxTensor.createTensor(
        env, FloatBuffer.wrap(out), new long[] {chunks.size(), heads, past, spec.headDim()});
  }

  /** Copies the new positions of present K or V into each chunk's blocks. */
  private void scatter(
      OrtSession.Result out,
      String name,
      float[] pool,
      List<SequenceChunk> chunks,
      int past,
      int total)
      throws OrtException {
    FloatBuffer present =
        ((OnnxTensor)
                out.get(name)
                    .orElseThrow(() -> new BackendException("graph has no output " + name)))
            .getFloatBuffer();
    int heads = spec.numKvHeads();
    int hd = spec.headDim();
    for (int s = 0; s < chunks.size(); s++) {
      SequenceChunk c = chunks.get(s);
      for (int t = 0; t < c.tokens().length; t++) {
        int to = kv.offset(c.blockTable(), c.startPosition() + t);
        for (int h = 0; h < heads; h++) {
          present.position(((s * heads + h) * total + past + t) * hd);
          present.get(pool, to + h * hd, hd);
        }
      }
    }
  }

  private static void closeQuietly(OrtSession session) {
    if (session != null) {
      try {
        session.close();
      } catch (OrtException ignored) {
        // already failing; the first error is the one to report
      }
    }
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      throw new BackendException("cannot close ONNX Runtime session: " + e.getMessage(), e);
    }
  }
}
