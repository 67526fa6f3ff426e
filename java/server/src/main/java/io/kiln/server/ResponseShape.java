package io.kiln.server;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** How chat and text completions differ in their response objects. */
enum ResponseShape {
  CHAT("chatcmpl-", "chat.completion", "chat.completion.chunk"),
  TEXT("cmpl-", "text_completion", "text_completion");

  final String idPrefix;
  final String object;
  final String chunkObject;

  ResponseShape(String idPrefix, String object, String chunkObject) {
    this.idPrefix = idPrefix;
    this.object = object;
    this.chunkObject = chunkObject;
  }

  /** The one choice of a whole response. */
  ObjectNode choice(String text, String finishReason) {
    ObjectNode choice = JsonNodeFactory.instance.objectNode();
    choice.put("index", 0);
    if (this == CHAT) {
      ObjectNode message = choice.putObject("message");
      message.put("role", "assistant");
      message.put("content", text);
    } else {
      choice.put("text", text);
    }
    choice.putNull("logprobs");
    choice.put("finish_reason", finishReason);
    return choice;
  }

  /** The one choice of a streamed chunk; {@code first} carries the chat role. */
  ObjectNode delta(String text, String finishReason, boolean first) {
    ObjectNode choice = JsonNodeFactory.instance.objectNode();
    choice.put("index", 0);
    if (this == CHAT) {
      ObjectNode delta = choice.putObject("delta");
      if (first) {
        delta.put("role", "assistant");
      }
      if (text != null) {
        delta.put("content", text);
      }
    } else {
      choice.put("text", text == null ? "" : text);
    }
    choice.putNull("logprobs");
    choice.put("finish_reason", finishReason);
    return choice;
  }
}
