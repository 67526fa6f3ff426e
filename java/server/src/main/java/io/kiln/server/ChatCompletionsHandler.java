package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.InvalidInputException;
import io.kiln.execution.llm.SamplingParams;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code POST /v1/chat/completions}: {@code messages} rendered with the model's chat template and
 * encoded without adding special tokens (the template writes its own BOS).
 */
final class ChatCompletionsHandler {
  private static final Set<String> FIELDS = fields();
  private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");

  private final ServerState state;

  ChatCompletionsHandler(ServerState state) {
    this.state = state;
  }

  private static Set<String> fields() {
    Set<String> f = new HashSet<>(GenerationParams.SHARED_FIELDS);
    f.addAll(
        Set.of(
            "messages",
            "max_completion_tokens",
            "add_generation_prompt",
            "response_format",
            "tools",
            "tool_choice",
            "functions",
            "function_call",
            "top_logprobs",
            "parallel_tool_calls"));
    return Set.copyOf(f);
  }

  void handle(RoutingContext ctx) {
    RequestFields f = RequestFields.of(ServerState.body(ctx), FIELDS);
    state.checkModel(f.requiredString("model"), state.model.name);
    f.onlyDefault("logprobs", false);
    for (String name : List.of("tools", "tool_choice", "functions", "function_call")) {
      f.unsupported(name);
    }
    f.unsupported("top_logprobs");
    f.onlyDefault("parallel_tool_calls", false);
    JsonNode format = f.get("response_format");
    if (format != null) {
      RequestFields.of(format, Set.of("type")).onlyDefault("type", "text");
    }
    GenerationParams params = GenerationParams.read(f, "max_completion_tokens");
    List<Map<String, Object>> messages = messages(f.get("messages"));
    boolean addGenerationPrompt = f.bool("add_generation_prompt", true);
    TextTokenizer tokenizer = state.model.requireTokenizer("messages");
    // Rendering and tokenizing take a while: off the event loop, then back on it to submit.
    ctx.vertx()
        .executeBlocking(() -> prompt(messages, addGenerationPrompt, tokenizer), false)
        .onSuccess(prompt -> ServerState.orFail(ctx, () -> submit(ctx, prompt, params)))
        .onFailure(ctx::fail);
  }

  private int[] prompt(
      List<Map<String, Object>> messages, boolean addGenerationPrompt, TextTokenizer tokenizer) {
    String text = state.model.chatTemplate.render(messages, addGenerationPrompt);
    int[] prompt = tokenizer.encode(text, false);
    if (prompt.length == 0) {
      throw ApiException.badRequest("the rendered chat prompt is empty", "messages");
    }
    return prompt;
  }

  private void submit(RoutingContext ctx, int[] prompt, GenerationParams params) {
    SamplingParams sampling =
        params.sampling(prompt.length, state.model.maxModelLen, state.model.eosIds, "messages");
    try {
      sampling.validate(state.model.engine.spec().vocabSize());
    } catch (InvalidInputException e) {
      throw ApiException.badRequest(e.getMessage(), null);
    }
    new Generation(state, ctx, ResponseShape.CHAT, prompt, sampling, params).start();
  }

  /** Messages as the template sees them: role, content as text, and name if given. */
  static List<Map<String, Object>> messages(JsonNode node) {
    if (node == null) {
      throw ApiException.badRequest("'messages' is required", "messages");
    }
    if (!node.isArray() || node.isEmpty()) {
      throw ApiException.badRequest("'messages' must be a non-empty list", "messages");
    }
    List<Map<String, Object>> out = new ArrayList<>();
    for (JsonNode message : node) {
      RequestFields m = RequestFields.of(message, Set.of("role", "content", "name"));
      String role = m.requiredString("role");
      if (!ROLES.contains(role)) {
        throw ApiException.badRequest(
            "message role '" + role + "' is not supported; use one of " + ROLES, "messages");
      }
      Map<String, Object> map = new LinkedHashMap<>();
      map.put("role", role);
      map.put("content", content(m.get("content")));
      String name = m.optionalString("name");
      if (name != null) {
        map.put("name", name);
      }
      out.add(map);
    }
    return out;
  }

  /** A string, or a list of {@code {"type": "text", "text": ...}} parts joined. */
  private static String content(JsonNode content) {
    if (content == null) {
      throw ApiException.badRequest("every message needs 'content'", "messages");
    }
    if (content.isTextual()) {
      return content.asText();
    }
    if (content.isArray()) {
      StringBuilder text = new StringBuilder();
      for (JsonNode part : content) {
        RequestFields p = RequestFields.of(part, Set.of("type", "text"));
        p.onlyDefault("type", "text");
        text.append(p.requiredString("text"));
      }
      return text.toString();
    }
    throw ApiException.badRequest(
        "message 'content' must be a string or a list of text parts", "messages");
  }
}
