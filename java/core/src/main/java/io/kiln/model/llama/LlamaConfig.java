package io.kiln.model.llama;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.ModelException;
import io.kiln.model.JsonProblems;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The shape of a Llama-family decoder, read from a Hugging Face {@code config.json}. Llama 2/3/3.x
 * (with rope scaling), Mistral and Qwen2 share one architecture; they differ in the fields below,
 * which {@link ModelFamilies} derives per family.
 *
 * @param qkvBias q/k/v projections have biases (Qwen2, or Llama with attention_bias)
 * @param outputBias the attention output projection has a bias (Llama with attention_bias)
 * @param slidingWindow attend only to this many latest positions, 0 for unlimited (Mistral)
 * @param eosTokenId the first end-of-sequence token, or -1
 */
public record LlamaConfig(
    String modelType,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    int vocabSize,
    int maxPositions,
    double rmsNormEps,
    double ropeTheta,
    RopeScaling ropeScaling,
    boolean tieWordEmbeddings,
    boolean qkvBias,
    boolean outputBias,
    boolean mlpBias,
    int slidingWindow,
    int bosTokenId,
    int eosTokenId) {

  /** Every shape is positive and every product of them fits an int, however the config came. */
  public LlamaConfig {
    for (int size :
        new int[] {
          hiddenSize,
          intermediateSize,
          numLayers,
          numHeads,
          numKvHeads,
          headDim,
          vocabSize,
          maxPositions
        }) {
      if (size <= 0) {
        throw new ModelException(
            "a Llama config needs positive sizes: hidden "
                + hiddenSize
                + ", intermediate "
                + intermediateSize
                + ", layers "
                + numLayers
                + ", heads "
                + numHeads
                + "/"
                + numKvHeads
                + ", head_dim "
                + headDim
                + ", vocab "
                + vocabSize
                + ", positions "
                + maxPositions);
      }
    }
    if (numHeads % numKvHeads != 0) {
      throw new ModelException(
          "num_attention_heads "
              + numHeads
              + " is not a multiple of num_key_value_heads "
              + numKvHeads);
    }
    if (headDim % 2 != 0) {
      throw new ModelException("head_dim " + headDim + " must be even");
    }
    if (!(rmsNormEps > 0)
        || !(ropeTheta > 0)
        || Double.isInfinite(rmsNormEps)
        || Double.isInfinite(ropeTheta)) {
      throw new ModelException(
          "rms_norm_eps " + rmsNormEps + " and rope_theta " + ropeTheta + " must be positive");
    }
    try {
      Math.multiplyExact(numHeads, headDim);
      Math.multiplyExact(2, Math.multiplyExact(numKvHeads, headDim));
      Math.multiplyExact(2, intermediateSize);
    } catch (ArithmeticException e) {
      throw new ModelException(
          "a Llama config whose layer widths overflow an int: heads "
              + numHeads
              + " x head_dim "
              + headDim
              + ", intermediate "
              + intermediateSize);
    }
  }

  public static LlamaConfig load(Path modelDirectory) {
    Path file =
        Files.isDirectory(modelDirectory) ? modelDirectory.resolve("config.json") : modelDirectory;
    if (!Files.isRegularFile(file)) {
      throw new ModelException("config.json not found: " + file);
    }
    try {
      return parse(new ObjectMapper().readTree(file.toFile()), file.toString());
    } catch (IOException e) {
      throw new ModelException("cannot parse " + file + ": " + JsonProblems.oneLine(e), e);
    }
  }

  public static LlamaConfig parse(String json) {
    try {
      return parse(new ObjectMapper().readTree(json), "config.json");
    } catch (IOException e) {
      throw new ModelException("cannot parse config.json: " + JsonProblems.oneLine(e), e);
    }
  }

  public static LlamaConfig parse(JsonNode c, String source) {
    if (c == null || !c.isObject()) {
      throw new ModelException(source + " is not a JSON object");
    }
    List<String> architectures = new ArrayList<>();
    JsonNode listed = c.get("architectures");
    if (listed != null && listed.isArray()) {
      listed.forEach(a -> architectures.add(a.asText()));
    }
    String modelType = text(c, "model_type", null);
    ModelFamily family = ModelFamilies.resolve(architectures, modelType, source);
    String act = text(c, "hidden_act", "silu");
    if (!act.equals("silu")) {
      throw new ModelException("unsupported hidden_act '" + act + "' in " + source + "; only silu");
    }
    int hidden = required(c, "hidden_size", source);
    int heads = required(c, "num_attention_heads", source);
    int kvHeads =
        c.hasNonNull("num_key_value_heads") ? required(c, "num_key_value_heads", source) : heads;
    int headDim = c.hasNonNull("head_dim") ? required(c, "head_dim", source) : hidden / heads;
    if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
      throw new ModelException(
          source
              + ": num_attention_heads "
              + heads
              + " is not a multiple of num_key_value_heads "
              + kvHeads);
    }
    if (headDim <= 0 || headDim % 2 != 0) {
      throw new ModelException(source + ": head_dim " + headDim + " must be positive and even");
    }
    JsonNode ropeParameters = c.get("rope_parameters");
    double theta = number(c, "rope_theta", Double.NaN);
    if (Double.isNaN(theta)) {
      theta = ropeParameters != null ? number(ropeParameters, "rope_theta", 10000) : 10000;
    }
    if (!(theta > 0) || Double.isInfinite(theta)) {
      throw new ModelException(source + ": rope_theta must be a positive number, got " + theta);
    }
    double eps = number(c, "rms_norm_eps", 1e-6);
    if (!(eps > 0) || Double.isInfinite(eps)) {
      throw new ModelException(source + ": rms_norm_eps must be a positive number, got " + eps);
    }
    JsonNode scalingNode = c.get("rope_scaling");
    if (scalingNode == null || scalingNode.isNull()) {
      scalingNode = ropeParameters;
    }
    boolean attentionBias = bool(c, "attention_bias", false);
    int window = 0;
    JsonNode sw = c.get("sliding_window");
    boolean windowUsed = family.slidingWindowEnabled(bool(c, "use_sliding_window", false));
    if (windowUsed && sw != null && sw.isNumber() && sw.asInt() > 0) {
      window = sw.asInt();
    }
    int maxPositions = required(c, "max_position_embeddings", source);
    if (window >= maxPositions) {
      window = 0;
    }
    return new LlamaConfig(
        family.modelType(),
        hidden,
        required(c, "intermediate_size", source),
        required(c, "num_hidden_layers", source),
        heads,
        kvHeads,
        headDim,
        required(c, "vocab_size", source),
        maxPositions,
        eps,
        theta,
        ropeScaling(scalingNode, source),
        bool(c, "tie_word_embeddings", family.tiedEmbeddingsByDefault()),
        family.qkvBias(attentionBias),
        family.outputBias(attentionBias),
        family.mlpBias(bool(c, "mlp_bias", false)),
        window,
        firstToken(c.get("bos_token_id")),
        firstToken(c.get("eos_token_id")));
  }

  private static RopeScaling ropeScaling(JsonNode s, String source) {
    if (s == null || s.isNull()) {
      return RopeScaling.NONE;
    }
    String type = text(s, "rope_type", text(s, "type", "default"));
    switch (type) {
      case "default":
        return RopeScaling.NONE;
      case "linear":
        return new RopeScaling("linear", number(s, "factor", 1), 1, 1, 0);
      case "llama3":
        return new RopeScaling(
            "llama3",
            need(s, "factor", source),
            need(s, "low_freq_factor", source),
            need(s, "high_freq_factor", source),
            (int) need(s, "original_max_position_embeddings", source));
      default:
        throw new ModelException("unsupported rope scaling type '" + type + "' in " + source);
    }
  }

  /** Query heads that share one KV head. */
  public int groupSize() {
    return numHeads / numKvHeads;
  }

  public int queryDim() {
    return numHeads * headDim;
  }

  public int kvDim() {
    return numKvHeads * headDim;
  }

  public double[] inverseFrequencies() {
    return ropeScaling.inverseFrequencies(ropeTheta, headDim);
  }

  private static int firstToken(JsonNode n) {
    if (n == null || n.isNull()) {
      return -1;
    }
    if (n.isArray()) {
      return n.size() == 0 ? -1 : n.get(0).asInt();
    }
    return n.asInt(-1);
  }

  /** A positive integer that fits an int; anything else is a broken config. */
  private static int required(JsonNode c, String key, String source) {
    JsonNode n = c.get(key);
    if (n == null || n.isNull()) {
      throw new ModelException(source + " lacks the integer field " + key);
    }
    if (!n.isIntegralNumber() || !n.canConvertToInt() || n.asInt() <= 0) {
      throw new ModelException(source + ": " + key + " must be a positive integer, got " + n);
    }
    return n.asInt();
  }

  private static double need(JsonNode c, String key, String source) {
    JsonNode n = c.get(key);
    if (n == null || !n.isNumber()) {
      throw new ModelException(source + ": rope scaling lacks the number field " + key);
    }
    return n.asDouble();
  }

  /** The number at {@code key}, the fallback when absent; a value of another type is an error. */
  private static double number(JsonNode c, String key, double fallback) {
    JsonNode n = c.get(key);
    if (n == null || n.isNull()) {
      return fallback;
    }
    if (!n.isNumber()) {
      throw new ModelException("config field " + key + " must be a number, got " + n);
    }
    return n.asDouble();
  }

  private static boolean bool(JsonNode c, String key, boolean fallback) {
    JsonNode n = c.get(key);
    if (n == null || n.isNull()) {
      return fallback;
    }
    if (!n.isBoolean()) {
      throw new ModelException("config field " + key + " must be true or false, got " + n);
    }
    return n.asBoolean();
  }

  private static String text(JsonNode c, String key, String fallback) {
    JsonNode n = c.get(key);
    return n == null || n.isNull() ? fallback : n.asText();
  }
}
