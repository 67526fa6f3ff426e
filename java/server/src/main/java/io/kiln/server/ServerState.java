package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.execution.llm.GenerationHandle;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.RoutingContext;
import java.io.IOException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** What the endpoint handlers share: the served model, metrics, admission and work in flight. */
final class ServerState {
  static final ObjectMapper JSON = new ObjectMapper();

  final ServerOptions options;
  final ServedModel model;
  final ServerMetrics metrics;
  final Admission admission;

  /** Requests generating now, so that shutdown can cancel what outlasts its grace. */
  final Set<GenerationHandle> generations = ConcurrentHashMap.newKeySet();

  final AtomicInteger embeddingsInFlight = new AtomicInteger();
  volatile boolean closing;

  ServerState(ServerOptions options, ServedModel model) {
    this.options = options;
    this.model = model;
    this.metrics = new ServerMetrics(model.engine);
    this.admission = new Admission(options.scheduler().maxNumSeqs(), options.maxQueue());
  }

  /** 404 unless {@code requested} is the served model's name. */
  void checkModel(String requested, String served) {
    if (!requested.equals(served)) {
      throw ApiException.notFound(
          "the model '" + requested + "' does not exist; this server serves '" + served + "'",
          "model_not_found");
    }
  }

  /** The request body as JSON; 400 when it is empty or malformed. */
  static JsonNode body(RoutingContext ctx) {
    Buffer buffer = ctx.body() == null ? null : ctx.body().buffer();
    if (buffer == null || buffer.length() == 0) {
      throw ApiException.badRequest("the request body is empty; send a JSON object", null);
    }
    try {
      JsonNode node = JSON.readTree(buffer.getBytes());
      if (node == null || node.isMissingNode()) {
        throw ApiException.badRequest("the request body is empty; send a JSON object", null);
      }
      return node;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw ApiException.badRequest(
          "the request body is not valid JSON: " + e.getOriginalMessage(), null);
    } catch (IOException e) {
      throw ApiException.badRequest("the request body cannot be read: " + e.getMessage(), null);
    }
  }

  /** Sends {@code body} as JSON with status 200. */
  static void sendJson(RoutingContext ctx, Object body) {
    try {
      ctx.response()
          .putHeader("Content-Type", "application/json")
          .end(JSON.writeValueAsString(body));
    } catch (IOException e) {
      throw ApiException.internal("cannot write the response: " + e.getMessage());
    }
  }

  /** Runs {@code step}, failing the request with what it throws. */
  static void orFail(RoutingContext ctx, Runnable step) {
    try {
      step.run();
    } catch (RuntimeException e) {
      ctx.fail(e);
    }
  }

  static long nowSeconds() {
    return System.currentTimeMillis() / 1000;
  }
}
