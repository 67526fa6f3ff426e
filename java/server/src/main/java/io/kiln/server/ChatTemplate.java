package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import io.kiln.ModelException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code chat_template} of a model's tokenizer_config.json, rendered with Jinjava the way
 * Hugging Face renders it (trim_blocks and lstrip_blocks on, {@code raise_exception} defined).
 */
final class ChatTemplate {
  private static final String RAISED = "chat template raised: ";
  // Jinjava reports a failing function without its message; raise() leaves it here.
  private static final ThreadLocal<String> RAISED_MESSAGE = new ThreadLocal<>();

  private final String template;
  private final String bosToken;
  private final String eosToken;
  private final Jinjava jinjava;

  private ChatTemplate(String template, String bosToken, String eosToken) {
    this.template = template;
    this.bosToken = bosToken;
    this.eosToken = eosToken;
    this.jinjava =
        new Jinjava(
            JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withMaxOutputSize(16L << 20)
                .build());
    jinjava.registerFunction(
        new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raise", String.class));
    jinjava.registerFunction(
        new ELFunctionDefinition(
            "", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
  }

  /**
   * The target of {@code strftime_now(format)} (Llama 3.1+ templates date their system prompt):
   * now, in Python's strftime directives that templates use.
   */
  public static String strftimeNow(String format) {
    java.time.ZonedDateTime now = java.time.ZonedDateTime.now();
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < format.length(); i++) {
      char c = format.charAt(i);
      if (c != '%' || i + 1 == format.length()) {
        out.append(c);
        continue;
      }
      char d = format.charAt(++i);
      String pattern =
          switch (d) {
            case 'd' -> "dd";
            case 'e' -> "d";
            case 'b' -> "MMM";
            case 'B' -> "MMMM";
            case 'm' -> "MM";
            case 'y' -> "yy";
            case 'Y' -> "yyyy";
            case 'H' -> "HH";
            case 'I' -> "hh";
            case 'M' -> "mm";
            case 'S' -> "ss";
            case 'p' -> "a";
            case 'a' -> "EEE";
            case 'A' -> "EEEE";
            case 'j' -> "DDD";
            default -> null;
          };
      if (pattern == null) {
        out.append(d == '%' ? "%" : "%" + d);
      } else {
        out.append(
            java.time.format.DateTimeFormatter.ofPattern(pattern, java.util.Locale.ENGLISH)
                .format(now));
      }
    }
    return out.toString();
  }

  /** The template of {@code modelDir}, or one with no template (every render then fails). */
  static ChatTemplate load(Path modelDir) {
    Path file = modelDir.resolve("tokenizer_config.json");
    if (!Files.isRegularFile(file)) {
      return new ChatTemplate(null, "", "");
    }
    JsonNode config;
    try {
      config = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new ModelException("cannot read " + file + ": " + e.getMessage(), e);
    }
    return new ChatTemplate(
        templateText(config.get("chat_template")),
        tokenText(config.get("bos_token")),
        tokenText(config.get("eos_token")));
  }

  boolean present() {
    return template != null;
  }

  /**
   * The prompt text for {@code messages} (each a map of role, content and whatever else the client
   * sent).
   *
   * @throws ApiException 400 when there is no template or it fails on these messages
   */
  String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
    if (template == null) {
      throw ApiException.badRequest(
          "this model has no chat_template in its tokenizer_config.json; use /v1/completions",
          "messages");
    }
    Map<String, Object> context = new HashMap<>();
    context.put("messages", messages);
    context.put("add_generation_prompt", addGenerationPrompt);
    context.put("bos_token", bosToken);
    context.put("eos_token", eosToken);
    RenderResult result;
    RAISED_MESSAGE.remove();
    try {
      result = jinjava.renderForResult(template, context);
    } catch (RuntimeException e) {
      throw failed(String.valueOf(e.getMessage()));
    } finally {
      String raised = RAISED_MESSAGE.get();
      RAISED_MESSAGE.remove();
      if (raised != null) {
        throw failed(RAISED + raised);
      }
    }
    for (TemplateError error : result.getErrors()) {
      if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
        throw failed(error.getMessage());
      }
    }
    return result.getOutput();
  }

  private static ApiException failed(String why) {
    int raised = why.indexOf(RAISED);
    String message = raised >= 0 ? why.substring(raised) : "the chat template failed: " + why;
    return ApiException.badRequest(message, "messages");
  }

  /** The target of {@code raise_exception(message)} in templates. */
  public static String raise(String message) {
    RAISED_MESSAGE.set(message);
    throw new IllegalStateException(RAISED + message);
  }

  /** A template string, or the "default" one of a list of named templates. */
  private static String templateText(JsonNode node) {
    if (node == null || node.isNull()) {
      return null;
    }
    if (node.isTextual()) {
      return node.asText();
    }
    if (node.isArray()) {
      for (JsonNode named : node) {
        if ("default".equals(named.path("name").asText())) {
          return named.path("template").asText(null);
        }
      }
    }
    return null;
  }

  /** A special token given as a string or as {@code {"content": ...}}. */
  private static String tokenText(JsonNode node) {
    if (node == null || node.isNull()) {
      return "";
    }
    return node.isTextual() ? node.asText() : node.path("content").asText("");
  }
}
