package io.kiln.server;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.ClosedException;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;

/** OpenAI's error body, {@code {"error": {"message", "type", "param", "code"}}}. */
final class ApiErrors {
  private ApiErrors() {}

  static ObjectNode body(ApiException e) {
    ObjectNode error = JsonNodeFactory.instance.objectNode();
    error.put("message", e.getMessage());
    error.put("type", e.type);
    error.put("param", e.param);
    error.put("code", e.code);
    ObjectNode root = JsonNodeFactory.instance.objectNode();
    root.set("error", error);
    return root;
  }

  /** The API error a failure stands for: Kiln's typed errors keep their meaning. */
  static ApiException of(Throwable failure) {
    Throwable t = failure;
    while (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
      t = t.getCause();
    }
    if (t instanceof ApiException api) {
      return api;
    }
    if (t instanceof InvalidInputException) {
      return ApiException.badRequest(t.getMessage(), null);
    }
    if (t instanceof ClosedException) {
      return ApiException.unavailable("the server is shutting down");
    }
    if (t instanceof KilnException) {
      return ApiException.internal(t.getMessage());
    }
    return ApiException.internal("internal error: " + t.getClass().getSimpleName());
  }
}
