package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.InvalidInputException;
import io.kiln.execution.llm.SamplingParams;
import io.vertx.ext.web.RoutingContext;
import java.util.HashSet;
import java.util.Set;

/**
 * {@code POST /v1/completions}: a prompt as text (encoded with the tokenizer's special tokens) or
 * as token ids (used exactly).
 */
final class CompletionsHandler {
  private static final Set<String> FIELDS = fields();

  private final ServerState state;

  CompletionsHandler(ServerState state) {
    this.state = state;
  }

  private static Set<String> fields() {
    Set<String> f = new HashSet<>(GenerationParams.SHARED_FIELDS);
    f.addAll(Set.of("prompt", "echo", "best_of", "suffix"));
    return Set.copyOf(f);
  }

  void handle(RoutingContext ctx) {
    RequestFields f = RequestFields.of(ServerState.body(ctx), FIELDS);
    state.checkModel(f.requiredString("model"), state.model.name);
    f.onlyDefault("echo", false);
    f.onlyDefault("best_of", 1);
    f.unsupported("suffix");
    f.unsupported("logprobs");
    GenerationParams params = GenerationParams.read(f, "max_tokens");
    JsonNode promptField = f.get("prompt");
    // Tokenizing a long prompt takes a while: off the event loop, then back on it to submit.
    ctx.vertx()
        .executeBlocking(() -> prompt(promptField), false)
        .onSuccess(prompt -> ServerState.orFail(ctx, () -> submit(ctx, prompt, params)))
        .onFailure(ctx::fail);
  }

  private void submit(RoutingContext ctx, int[] prompt, GenerationParams params) {
    SamplingParams sampling =
        params.sampling(prompt.length, state.model.maxModelLen, state.model.eosIds, "prompt");
    try {
      sampling.validate(state.model.engine.spec().vocabSize());
    } catch (InvalidInputException e) {
      throw ApiException.badRequest(e.getMessage(), null);
    }
    new Generation(state, ctx, ResponseShape.TEXT, prompt, sampling, params).start();
  }

  /** Text, token ids, or a list holding exactly one of those. */
  private int[] prompt(JsonNode node) {
    if (node == null) {
      throw ApiException.badRequest("'prompt' is required", "prompt");
    }
    if (node.isArray() && node.size() == 1 && (node.get(0).isTextual() || node.get(0).isArray())) {
      return prompt(node.get(0));
    }
    if (node.isTextual()) {
      if (node.asText().isEmpty()) {
        throw ApiException.badRequest("'prompt' must not be empty", "prompt");
      }
      int[] ids = state.model.requireTokenizer("prompt").encode(node.asText(), true);
      if (ids.length == 0) {
        throw ApiException.badRequest("'prompt' encodes to no tokens", "prompt");
      }
      return ids;
    }
    if (node.isArray()) {
      if (node.isEmpty()) {
        throw ApiException.badRequest("'prompt' must not be empty", "prompt");
      }
      int vocab = state.model.engine.spec().vocabSize();
      int[] ids = new int[node.size()];
      for (int i = 0; i < ids.length; i++) {
        JsonNode id = node.get(i);
        if (!id.isIntegralNumber() || !id.canConvertToInt()) {
          throw ApiException.badRequest(
              "'prompt' must be a string, a list of token ids, or a list of one of those",
              "prompt");
        }
        ids[i] = id.asInt();
        if (ids[i] < 0 || ids[i] >= vocab) {
          throw ApiException.badRequest(
              "token id " + ids[i] + " in 'prompt' is outside the vocabulary [0, " + vocab + ")",
              "prompt");
        }
      }
      return ids;
    }
    throw ApiException.badRequest(
        "'prompt' must be a string, a list of token ids, or a list of one of those", "prompt");
  }
}
