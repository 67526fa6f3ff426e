package io.kiln.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.execution.llm.FinishReason;
import io.kiln.execution.llm.GenerationCancelledException;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.NonFiniteLogitsException;
import io.kiln.execution.llm.SamplingParams;
import io.kiln.execution.llm.TokenEvent;
import io.kiln.execution.llm.TokenListener;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.ext.web.RoutingContext;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;

/**
 * One chat or text completion, from submission to its last byte, whole or streamed as server-sent
 * events. The engine's callbacks hop onto the request's Vert.x context, so everything here runs on
 * one thread. A client that goes away cancels its request, which frees its KV blocks.
 */
final class Generation implements TokenListener {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Generation.class);

  private final ServerState state;
  private final RoutingContext ctx;
  private final ResponseShape shape;
  private final int[] prompt;
  private final SamplingParams sampling;
  private final GenerationParams params;
  private final IncrementalDecoder decoder; // null when the model has no tokenizer
  private final String id;
  private final long created = ServerState.nowSeconds();
  private final List<Integer> tokenIds = new ArrayList<>();
  private Context context;
  private GenerationHandle handle;
  private long startNanos;
  private long lastTokenNanos;
  private int idsSent;
  private boolean done;

  Generation(
      ServerState state,
      RoutingContext ctx,
      ResponseShape shape,
      int[] prompt,
      SamplingParams sampling,
      GenerationParams params) {
    this.state = state;
    this.ctx = ctx;
    this.shape = shape;
    this.prompt = prompt;
    this.sampling = sampling;
    this.params = params;
    TextTokenizer tokenizer = state.model.tokenizer;
    this.decoder = tokenizer == null ? null : new IncrementalDecoder(tokenizer, params.stops());
    this.id = shape.idPrefix + UUID.randomUUID().toString().replace("-", "");
  }

  /** Submits the request; throws (before anything is sent) when it is refused. */
  void start() {
    context = Vertx.currentContext();
    state.admission.enter();
    try {
      startNanos = System.nanoTime();
      lastTokenNanos = startNanos;
      handle = state.model.engine.submit(prompt, sampling, this);
    } catch (RuntimeException e) {
      state.admission.leave();
      throw e;
    }
    state.generations.add(handle);
    state.metrics.prompt(prompt.length);
    HttpServerResponse response = ctx.response();
    response.closeHandler(v -> disconnected());
    if (response.closed()) {
      disconnected(); // gone while the prompt was prepared
      return;
    }
    if (params.stream()) {
      response
          .setChunked(true)
          .putHeader("Content-Type", "text/event-stream")
          .putHeader("Cache-Control", "no-cache");
      if (shape == ResponseShape.CHAT) {
        sendChunk(shape.delta("", null, true));
      }
    }
  }

  @Override
  public void onToken(TokenEvent event) {
    context.runOnContext(v -> token(event.tokenId()));
  }

  @Override
  public void onComplete(GenerationResult result) {
    context.runOnContext(v -> finish(finishReason(result.finishReason())));
  }

  @Override
  public void onError(Throwable error) {
    context.runOnContext(v -> failed(error));
  }

  private void token(int tokenId) {
    if (done) {
      return;
    }
    long now = System.nanoTime();
    state.metrics.token((now - lastTokenNanos) / 1e9, tokenIds.isEmpty());
    lastTokenNanos = now;
    tokenIds.add(tokenId);
    if (decoder == null) {
      if (params.stream()) {
        sendChunk(shape.delta("", null, false));
      }
      return;
    }
    String delta = decoder.push(tokenId);
    if (params.stream() && !delta.isEmpty()) {
      sendChunk(shape.delta(delta, null, false));
    }
    if (decoder.stopped()) {
      handle.cancel();
      finish("stop");
    }
  }

  private void finish(String finishReason) {
    if (done) {
      return;
    }
    String tail = decoder == null ? "" : decoder.finish();
    if (params.stream()) {
      if (!tail.isEmpty()) {
        sendChunk(shape.delta(tail, null, false));
      }
      sendChunk(shape.delta(null, finishReason, false));
      if (params.includeUsage()) {
        ObjectNode usage = chunk();
        usage.putArray("choices");
        usage.set("usage", usage());
        sendEvent(usage);
      }
      sendData("[DONE]");
      endResponse(null);
    } else {
      ObjectNode body = JsonNodeFactory.instance.objectNode();
      body.put("id", id);
      body.put("object", shape.object);
      body.put("created", created);
      body.put("model", state.model.name);
      ObjectNode choice = shape.choice(decoder == null ? "" : decoder.text(), finishReason);
      if (params.returnTokenIds()) {
        body.set("prompt_token_ids", ids(prompt));
        choice.set("token_ids", ids(tokenIds, 0));
      }
      body.putArray("choices").add(choice);
      body.set("usage", usage());
      endResponse(body);
    }
    release(finishReason);
  }

  private void failed(Throwable error) {
    if (done) {
      return;
    }
    if (error instanceof NonFiniteLogitsException) {
      finish("error");
      return;
    }
    if (!(error instanceof GenerationCancelledException)) {
      LOG.warn("request {} failed: {}", id, error.toString());
    }
    ApiException api =
        error instanceof GenerationCancelledException
            ? ApiException.unavailable("the request was cancelled: the server is shutting down")
            : ApiErrors.of(error);
    HttpServerResponse response = ctx.response();
    if (!response.closed() && !response.ended()) {
      if (response.headWritten()) {
        sendEvent(ApiErrors.body(api));
        sendData("[DONE]");
        response.end();
      } else {
        response.setStatusCode(api.status);
        endResponse(ApiErrors.body(api));
      }
    }
    release("abort");
  }

  /** The connection closed before the response ended: stop generating. */
  private void disconnected() {
    if (!done && handle != null) {
      handle.cancel();
    }
  }

  private void release(String finishReason) {
    done = true;
    state.generations.remove(handle);
    state.admission.leave();
    state.metrics.finished((System.nanoTime() - startNanos) / 1e9, finishReason);
  }

  private ObjectNode chunk() {
    ObjectNode chunk = JsonNodeFactory.instance.objectNode();
    chunk.put("id", id);
    chunk.put("object", shape.chunkObject);
    chunk.put("created", created);
    chunk.put("model", state.model.name);
    return chunk;
  }

  private void sendChunk(ObjectNode choice) {
    ObjectNode chunk = chunk();
    if (params.returnTokenIds()) {
      choice.set("token_ids", ids(tokenIds, idsSent));
      idsSent = tokenIds.size();
    }
    chunk.putArray("choices").add(choice);
    if (params.includeUsage()) {
      chunk.putNull("usage");
    }
    sendEvent(chunk);
  }

  private ObjectNode usage() {
    ObjectNode usage = JsonNodeFactory.instance.objectNode();
    usage.put("prompt_tokens", prompt.length);
    usage.put("completion_tokens", tokenIds.size());
    usage.put("total_tokens", prompt.length + tokenIds.size());
    return usage;
  }

  private void sendEvent(ObjectNode event) {
    try {
      sendData(ServerState.JSON.writeValueAsString(event));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private void sendData(String data) {
    HttpServerResponse response = ctx.response();
    if (!response.closed() && !response.ended()) {
      response.write("data: " + data + "\n\n");
    }
  }

  private void endResponse(ObjectNode body) {
    HttpServerResponse response = ctx.response();
    if (response.closed() || response.ended()) {
      return;
    }
    if (body == null) {
      response.end();
    } else {
      try {
        response
            .putHeader("Content-Type", "application/json")
            .end(ServerState.JSON.writeValueAsString(body));
      } catch (JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }
  }

  private static String finishReason(FinishReason reason) {
    return reason == FinishReason.CANCELLED ? "abort" : reason.name().toLowerCase(Locale.ROOT);
  }

  private static ArrayNode ids(int[] ids) {
    ArrayNode array = JsonNodeFactory.instance.arrayNode();
    for (int id : ids) {
      array.add(id);
    }
    return array;
  }

  private static ArrayNode ids(List<Integer> ids, int from) {
    ArrayNode array = JsonNodeFactory.instance.arrayNode();
    for (int i = from; i < ids.size(); i++) {
      array.add(ids.get(i));
    }
    return array;
  }
}
