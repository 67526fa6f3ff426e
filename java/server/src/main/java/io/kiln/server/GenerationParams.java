package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.execution.llm.SamplingParams;
import java.util.List;
import java.util.Set;

/**
 * The parameters chat and text completions share, read from a request body: sampling, stop strings,
 * streaming. Parameters Kiln does not implement are refused unless they hold the one value it does
 * implement (e.g. {@code n} = 1).
 *
 * @param maxTokens the requested completion length, or 0 for "as long as the context allows"
 */
record GenerationParams(
    int maxTokens,
    double temperature,
    double topP,
    int topK,
    double repetitionPenalty,
    long seed,
    boolean ignoreEos,
    List<String> stops,
    boolean stream,
    boolean includeUsage,
    boolean returnTokenIds) {

  /** Fields both endpoints know. */
  static final Set<String> SHARED_FIELDS =
      Set.of(
          "model",
          "max_tokens",
          "temperature",
          "top_p",
          "top_k",
          "seed",
          "stop",
          "ignore_eos",
          "n",
          "stream",
          "stream_options",
          "presence_penalty",
          "frequency_penalty",
          "repetition_penalty",
          "logit_bias",
          "logprobs",
          "user",
          "return_token_ids");

  private static final int MAX_STOPS = 16;

  static GenerationParams read(RequestFields f, String maxTokensField) {
    f.onlyDefault("n", 1);
    f.onlyDefault("presence_penalty", 0);
    f.onlyDefault("frequency_penalty", 0);
    JsonNode bias = f.get("logit_bias");
    if (bias != null && !(bias.isObject() && bias.isEmpty())) {
      throw ApiException.badRequest("'logit_bias' is not supported by Kiln", "logit_bias");
    }
    f.optionalString("user");
    int maxTokens = (int) f.integer(maxTokensField, 0, 1, Integer.MAX_VALUE);
    if (!maxTokensField.equals("max_tokens")) {
      int legacy = (int) f.integer("max_tokens", 0, 1, Integer.MAX_VALUE);
      if (legacy > 0 && maxTokens > 0 && legacy != maxTokens) {
        throw ApiException.badRequest(
            "'max_tokens' and '" + maxTokensField + "' disagree", maxTokensField);
      }
      maxTokens = maxTokens > 0 ? maxTokens : legacy;
    }
    List<String> stops = f.stringOrList("stop", MAX_STOPS);
    if (stops.stream().anyMatch(String::isEmpty)) {
      throw ApiException.badRequest("'stop' strings must not be empty", "stop");
    }
    boolean stream = f.bool("stream", false);
    boolean includeUsage = false;
    JsonNode streamOptions = f.get("stream_options");
    if (streamOptions != null) {
      if (!stream) {
        throw ApiException.badRequest(
            "'stream_options' is only allowed when 'stream' is true", "stream_options");
      }
      RequestFields options = RequestFields.of(streamOptions, Set.of("include_usage"));
      includeUsage = options.bool("include_usage", false);
    }
    return new GenerationParams(
        maxTokens,
        f.number("temperature", 1.0, 0.0, 2.0),
        f.number("top_p", 1.0, Double.MIN_VALUE, 1.0),
        topK(f),
        f.number("repetition_penalty", 1.0, Double.MIN_VALUE, 100.0),
        f.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE),
        f.bool("ignore_eos", false),
        stops,
        stream,
        includeUsage,
        f.bool("return_token_ids", false));
  }

  /** vLLM's convention: -1 (or 0) disables top-k. */
  private static int topK(RequestFields f) {
    long k = f.integer("top_k", 0, -1, Integer.MAX_VALUE);
    return k < 0 ? 0 : (int) k;
  }

  /**
   * The engine's parameters for a prompt of {@code promptLength} tokens.
   *
   * @param eosIds the model's end tokens, which stop the request unless {@code ignore_eos}
   * @throws ApiException 400 when prompt and completion do not fit in {@code maxModelLen}
   */
  SamplingParams sampling(int promptLength, int maxModelLen, int[] eosIds, String promptField) {
    if (promptLength >= maxModelLen) {
      throw ApiException.badRequest(
          "the prompt has "
              + promptLength
              + " tokens; this model's maximum context length is "
              + maxModelLen
              + " tokens, prompt and completion together",
          promptField);
    }
    int room = maxModelLen - promptLength;
    if (maxTokens > room) {
      throw ApiException.badRequest(
          "this model's maximum context length is "
              + maxModelLen
              + " tokens; the prompt has "
              + promptLength
              + " and max_tokens asks for "
              + maxTokens,
          "max_tokens");
    }
    return SamplingParams.builder()
        .temperature(temperature)
        .topP(topP)
        .topK(topK)
        .repetitionPenalty(repetitionPenalty)
        .seed(seed)
        .maxNewTokens(maxTokens > 0 ? maxTokens : room)
        .stopTokenIds(ignoreEos ? new int[0] : eosIds)
        .ignoreEos(ignoreEos)
        .build();
  }
}
