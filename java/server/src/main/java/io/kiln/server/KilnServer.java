package io.kiln.server;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.LlmEngine;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * An OpenAI-compatible HTTP server for one model: {@code /v1/models}, {@code /v1/chat/completions},
 * {@code /v1/completions}, {@code /v1/embeddings}, {@code /health} and {@code /metrics}.
 *
 * <pre>{@code
 * try (KilnServer server = KilnServer.start(ServerOptions.defaults(dir).withAddress("127.0.0.1", 0))) {
 *   int port = server.port();
 * }
 * }</pre>
 *
 * <p>{@link #close} stops taking requests, lets streams in flight finish within the grace period
 * (cancelling what is left), then closes the engine, runner, tokenizer and embedder.
 */
public final class KilnServer implements AutoCloseable {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(KilnServer.class);
  private static final Set<String> ENDPOINTS =
      Set.of(
          "/v1/models",
          "/v1/chat/completions",
          "/v1/completions",
          "/v1/embeddings",
          "/health",
          "/metrics");
  private static final long BIND_TIMEOUT_SECONDS = 30;
  private static final long STARTED_SECONDS = ServerState.nowSeconds();

  private final ServerState state;
  private final Vertx vertx;
  private final HttpServer http;
  private final long samplerTimer;
  private boolean closed;

  private KilnServer(ServerState state, Vertx vertx, HttpServer http, long samplerTimer) {
    this.state = state;
    this.vertx = vertx;
    this.http = http;
    this.samplerTimer = samplerTimer;
  }

  /** Opens the model and binds the port; the server answers once this returns. */
  public static KilnServer start(ServerOptions options) {
    ServedModel model = ServedModel.open(options);
    Vertx vertx = Vertx.vertx();
    try {
      ServerState state = new ServerState(options, model);
      Router router = router(vertx, state);
      HttpServer http =
          await(
              vertx
                  .createHttpServer(
                      new HttpServerOptions().setHost(options.host()).setPort(options.port()))
                  .requestHandler(router)
                  .listen());
      long timer = vertx.setPeriodic(100, id -> state.metrics.sample(model.engine.stats()));
      LOG.info(
          "serving {} on http://{}:{} (max model len {}, embeddings: {})",
          model.name,
          options.host(),
          http.actualPort(),
          model.maxModelLen,
          model.embeddingModelName);
      return new KilnServer(state, vertx, http, timer);
    } catch (RuntimeException e) {
      vertx.close();
      model.close();
      throw e;
    }
  }

  /** The bound port (the ephemeral one when started on port 0). */
  public int port() {
    return http.actualPort();
  }

  public String modelName() {
    return state.model.name;
  }

  /** The engine behind the completions endpoints, e.g. for its {@code stats()}. */
  public LlmEngine engine() {
    return state.model.engine;
  }

  /** Longest prompt plus completion a request may ask for. */
  public int maxModelLen() {
    return state.model.maxModelLen;
  }

  private static Router router(Vertx vertx, ServerState state) {
    Router router = Router.router(vertx);
    ChatCompletionsHandler chat = new ChatCompletionsHandler(state);
    CompletionsHandler completions = new CompletionsHandler(state);
    EmbeddingsHandler embeddings = new EmbeddingsHandler(state);
    router.route().handler(ctx -> countAndCheck(ctx, state));
    router.route("/v1/*").handler(ctx -> authorize(ctx, state.options.apiKey()));
    router
        .route()
        .method(HttpMethod.POST)
        .handler(BodyHandler.create(false).setBodyLimit(state.options.maxBodyBytes()));
    router.get("/v1/models").handler(guard(ctx -> models(ctx, state)));
    router.get("/v1/models/:id").handler(guard(ctx -> oneModel(ctx, state)));
    router.post("/v1/chat/completions").handler(guard(chat::handle));
    router.post("/v1/completions").handler(guard(completions::handle));
    router.post("/v1/embeddings").handler(guard(embeddings::handle));
    router.get("/health").handler(ctx -> ctx.response().end());
    router
        .get("/metrics")
        .handler(
            ctx ->
                ctx.response()
                    .putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                    .end(state.metrics.scrape()));
    router
        .route()
        .last()
        .handler(
            ctx ->
                ctx.fail(
                    ApiException.notFound(
                        "no endpoint " + ctx.request().method() + " " + ctx.request().path(),
                        "not_found")));
    router.route().failureHandler(ctx -> sendError(ctx, state));
    return router;
  }

  /** Counts every request by endpoint and status; refuses new ones while closing. */
  private static void countAndCheck(RoutingContext ctx, ServerState state) {
    String path = ctx.request().path();
    String endpoint = ENDPOINTS.contains(path) ? path : "other";
    ctx.addEndHandler(v -> state.metrics.request(endpoint, ctx.response().getStatusCode()));
    if (state.closing) {
      ctx.fail(ApiException.unavailable("the server is shutting down"));
      return;
    }
    ctx.next();
  }

  private static void authorize(RoutingContext ctx, String apiKey) {
    if (apiKey == null) {
      ctx.next();
      return;
    }
    String header = ctx.request().getHeader("Authorization");
    byte[] expected = ("Bearer " + apiKey).getBytes(StandardCharsets.UTF_8);
    byte[] given = header == null ? new byte[0] : header.getBytes(StandardCharsets.UTF_8);
    if (!MessageDigest.isEqual(expected, given)) {
      ctx.fail(
          ApiException.unauthorized(
              header == null
                  ? "missing API key: send 'Authorization: Bearer KEY'"
                  : "incorrect API key"));
      return;
    }
    ctx.next();
  }

  /** Runs a handler, turning what it throws into the error response. */
  private static Handler<RoutingContext> guard(Handler<RoutingContext> handler) {
    return ctx -> {
      try {
        handler.handle(ctx);
      } catch (RuntimeException e) {
        ctx.fail(e);
      }
    };
  }

  private static void models(RoutingContext ctx, ServerState state) {
    ObjectNode body = JsonNodeFactory.instance.objectNode();
    body.put("object", "list");
    body.putArray("data").add(model(state));
    ServerState.sendJson(ctx, body);
  }

  /** {@code GET /v1/models/{id}}: the served model, or 404. */
  private static void oneModel(RoutingContext ctx, ServerState state) {
    state.checkModel(ctx.pathParam("id"), state.model.name);
    ServerState.sendJson(ctx, model(state));
  }

  private static ObjectNode model(ServerState state) {
    ObjectNode model = JsonNodeFactory.instance.objectNode();
    model.put("id", state.model.name);
    model.put("object", "model");
    model.put("created", STARTED_SECONDS);
    model.put("owned_by", "kiln");
    model.put("max_model_len", state.model.maxModelLen);
    return model;
  }

  private static void sendError(RoutingContext ctx, ServerState state) {
    Throwable failure = ctx.failure();
    ApiException error;
    if (failure != null) {
      error = ApiErrors.of(failure);
      if (error.status >= 500 && !(failure instanceof ApiException)) {
        LOG.warn("request failed: {}", failure.toString());
      }
    } else if (ctx.statusCode() == 413) {
      error = ApiException.tooLarge(state.options.maxBodyBytes());
    } else if (ctx.statusCode() == 400) {
      error = ApiException.badRequest("bad request", null);
    } else {
      error = ApiException.internal("request failed with status " + ctx.statusCode());
    }
    var response = ctx.response();
    if (response.ended() || response.closed()) {
      return;
    }
    if (response.headWritten()) {
      response.end();
      return;
    }
    response.setStatusCode(error.status);
    if (error.status == 429) {
      response.putHeader("Retry-After", "1");
    }
    ServerState.sendJson(ctx, ApiErrors.body(error));
  }

  /**
   * Stops taking requests, waits up to the grace period for those in flight, cancels the rest, then
   * closes the server, engine, runner, tokenizer and embedder. Do not call it on a Vert.x
   * event-loop thread.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    state.closing = true;
    long deadline = System.nanoTime() + state.options.shutdownGrace().toNanos();
    waitForWork(deadline);
    if (!state.generations.isEmpty()) {
      LOG.warn("cancelling {} requests still running at shutdown", state.generations.size());
      state.generations.forEach(GenerationHandle::cancel);
      waitForWork(System.nanoTime() + TimeUnit.SECONDS.toNanos(5));
    }
    vertx.cancelTimer(samplerTimer);
    try {
      await(http.close());
    } catch (RuntimeException e) {
      LOG.warn("closing the HTTP server failed: {}", e.toString());
    }
    state.model.close();
    state.metrics.close();
    try {
      await(vertx.close());
    } catch (RuntimeException e) {
      LOG.warn("closing Vert.x failed: {}", e.toString());
    }
  }

  private void waitForWork(long deadlineNanos) {
    while ((state.admission.inFlight() > 0 || state.embeddingsInFlight.get() > 0)
        && System.nanoTime() < deadlineNanos) {
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private static <T> T await(Future<T> future) {
    try {
      return future
          .toCompletionStage()
          .toCompletableFuture()
          .get(BIND_TIMEOUT_SECONDS, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      throw new io.kiln.BackendException(
          "server: " + (cause == null ? e.getMessage() : cause.getMessage()), cause);
    } catch (TimeoutException e) {
      throw new io.kiln.BackendException(
          "server: timed out after " + BIND_TIMEOUT_SECONDS + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new io.kiln.BackendException("server: interrupted", e);
    }
  }
}
