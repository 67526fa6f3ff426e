package io.kiln.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * Load on an OpenAI-compatible server over HTTP: streamed completions of random token prompts at a
 * fixed concurrency (closed loop), or arriving at a Poisson rate with at most that many in flight.
 * TTFT and inter-token latency are timed at the client, from the server-sent events.
 */
public final class ServeBenchmark implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  // Prompt ids below this exist in any real vocabulary (byte-level tokenizers start at 256).
  private static final int PROMPT_ID_LIMIT = 256;

  /**
   * @param baseUrl e.g. {@code http://127.0.0.1:8000} (the {@code /v1} part is added)
   * @param requestRate requests per second, or 0 for a closed loop
   */
  public record Options(
      String baseUrl,
      String apiKey,
      String model,
      int promptLength,
      int generateLength,
      double requestRate,
      long seed) {}

  private final Options options;
  private final Vertx vertx;
  private final HttpClientAgent client;

  /** Holds a Vert.x instance and an HTTP client pool of {@code maxConnections}: close it. */
  public ServeBenchmark(Options options, int maxConnections) {
    this.options = options;
    this.vertx = Vertx.vertx();
    this.client =
        vertx.createHttpClient(
            new HttpClientOptions().setConnectTimeout(10_000),
            new PoolOptions().setHttp1MaxSize(Math.max(1, maxConnections)));
  }

  @Override
  public void close() {
    client.close().await();
    vertx.close().await();
  }

  /** A whole response: its status and body. */
  private record Reply(int status, io.vertx.core.buffer.Buffer body) {}

  /** The model to ask for: the one given, else the server's first. */
  public String model() {
    if (options.model() != null) {
      return options.model();
    }
    CompletableFuture<Reply> reply = new CompletableFuture<>();
    RequestOptions request =
        new RequestOptions().setMethod(HttpMethod.GET).setAbsoluteURI(url("/v1/models"));
    if (options.apiKey() != null) {
      request.putHeader("Authorization", "Bearer " + options.apiKey());
    }
    client
        .request(request)
        .compose(r -> r.send())
        .compose(response -> response.body().map(b -> new Reply(response.statusCode(), b)))
        .onSuccess(reply::complete)
        .onFailure(reply::completeExceptionally);
    try {
      Reply models = reply.get();
      if (models.status() != 200) {
        throw new BackendException("GET /v1/models: HTTP " + models.status() + " " + models.body());
      }
      return JSON.readTree(models.body().toString()).at("/data/0/id").asText();
    } catch (IOException | java.util.concurrent.ExecutionException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new BackendException(
          "cannot reach " + options.baseUrl() + ": " + cause.getMessage(), cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted", e);
    }
  }

  /** Runs {@code requests} requests with at most {@code concurrency} in flight. */
  public LlmBenchRow run(String model, int concurrency, int requests) {
    SplittableRandom random = new SplittableRandom(options.seed() + concurrency);
    List<Timing> timings = Collections.synchronizedList(new ArrayList<>());
    ExecutorService pool = Executors.newFixedThreadPool(concurrency);
    Semaphore slots = new Semaphore(concurrency);
    long start = System.nanoTime();
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int i = 0; i < requests; i++) {
        if (options.requestRate() > 0 && i > 0) {
          sleepSeconds(-Math.log(1 - random.nextDouble()) / options.requestRate());
        }
        String body = body(model, prompt(random));
        slots.acquireUninterruptibly();
        futures.add(
            pool.submit(
                () -> {
                  try {
                    timings.add(stream(body));
                  } finally {
                    slots.release();
                  }
                }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } catch (java.util.concurrent.ExecutionException e) {
      Throwable cause = e.getCause();
      throw cause instanceof RuntimeException r ? r : new BackendException(cause.toString(), cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted", e);
    } finally {
      pool.shutdownNow();
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    List<Double> ttft = timings.stream().map(Timing::ttftMillis).toList();
    List<Double> itl =
        timings.stream().flatMapToDouble(t -> Arrays.stream(t.itlMillis())).boxed().toList();
    long tokens = timings.stream().mapToLong(Timing::tokens).sum();
    return new LlmBenchRow(
        concurrency,
        requests,
        tokens,
        seconds,
        LlmBenchmark.percentile(ttft, 0.5),
        LlmBenchmark.percentile(ttft, 0.99),
        LlmBenchmark.percentile(itl, 0.5),
        LlmBenchmark.percentile(itl, 0.99),
        LlmBenchmark.mean(itl),
        null, // the engine's KV use, speculation and step times are not seen over HTTP
        null,
        null);
  }

  record Timing(double ttftMillis, double[] itlMillis, long tokens) {}

  private int[] prompt(SplittableRandom random) {
    int[] ids = new int[options.promptLength()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = 1 + random.nextInt(PROMPT_ID_LIMIT - 1);
    }
    return ids;
  }

  private String body(String model, int[] prompt) {
    var root = JSON.createObjectNode();
    root.put("model", model);
    var ids = root.putArray("prompt");
    for (int id : prompt) {
      ids.add(id);
    }
    root.put("max_tokens", options.generateLength());
    root.put("temperature", 0);
    root.put("ignore_eos", true);
    root.put("stream", true);
    root.put("return_token_ids", true);
    return root.toString();
  }

  /**
   * One streamed request: tokens counted from each event's {@code token_ids}. The events are
   * scanned on the Vert.x event loop as bytes arrive, without a JSON tree per event: on a machine
   * the server shares, every cycle the client spends is one the server loses.
   */
  private Timing stream(String body) {
    long sent = System.nanoTime();
    CompletableFuture<Timing> done = new CompletableFuture<>();
    RequestOptions request =
        new RequestOptions()
            .setMethod(HttpMethod.POST)
            .setAbsoluteURI(url("/v1/completions"))
            .putHeader("Content-Type", "application/json")
            .setIdleTimeout(Duration.ofMinutes(10).toMillis());
    if (options.apiKey() != null) {
      request.putHeader("Authorization", "Bearer " + options.apiKey());
    }
    client
        .request(request)
        .compose(r -> r.send(body))
        .onFailure(done::completeExceptionally)
        .onSuccess(
            response -> {
              EventCounter counter = new EventCounter(sent);
              StringBuilder error = response.statusCode() == 200 ? null : new StringBuilder();
              response.handler(
                  chunk -> {
                    if (error != null) {
                      error.append(chunk.toString(StandardCharsets.UTF_8));
                    } else {
                      counter.accept(chunk.toString(StandardCharsets.UTF_8));
                    }
                  });
              response.exceptionHandler(done::completeExceptionally);
              response.endHandler(
                  end -> {
                    if (error != null) {
                      done.completeExceptionally(
                          new BackendException("HTTP " + response.statusCode() + ": " + error));
                    } else {
                      done.complete(counter.timing());
                    }
                  });
            });
    try {
      return done.get();
    } catch (java.util.concurrent.ExecutionException e) {
      Throwable cause = e.getCause();
      throw cause instanceof BackendException b
          ? b
          : new BackendException("request failed: " + cause, cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted", e);
    }
  }

  /** Counts the token ids of server-sent events as their bytes arrive, timing each event. */
  static final class EventCounter {
    private static final String IDS = "\"token_ids\":[";
    private final long sentNanos;
    private final StringBuilder pending = new StringBuilder();
    private final List<Double> itl = new ArrayList<>();
    private double ttft = Double.NaN;
    private long tokens;
    private long last;

    EventCounter(long sentNanos) {
      this.sentNanos = sentNanos;
      this.last = sentNanos;
    }

    void accept(String chunk) {
      pending.append(chunk);
      int lineStart = 0;
      for (int newline = pending.indexOf("\n");
          newline >= 0;
          newline = pending.indexOf("\n", lineStart)) {
        event(lineStart, newline);
        lineStart = newline + 1;
      }
      pending.delete(0, lineStart);
    }

    /** One line {@code [from, to)} of the stream: an event when it is {@code data: {...}}. */
    private void event(int from, int to) {
      if (to - from < 7 || !pending.substring(from, from + 7).equals("data: {")) {
        return;
      }
      int at = pending.indexOf(IDS, from);
      if (at < 0 || at >= to) {
        return;
      }
      int open = at + IDS.length();
      int close = pending.indexOf("]", open);
      if (close <= open) {
        return; // no ids in this event
      }
      int n = 1;
      for (int i = open; i < close; i++) {
        if (pending.charAt(i) == ',') {
          n++;
        }
      }
      long now = System.nanoTime();
      int gaps = n;
      if (tokens == 0) {
        ttft = (now - sentNanos) / 1e6;
        gaps--;
      }
      // Tokens that arrive together share the gap since the last event.
      for (int i = 0; i < gaps; i++) {
        itl.add((now - last) / 1e6 / gaps);
      }
      tokens += n;
      last = now;
    }

    Timing timing() {
      return new Timing(ttft, itl.stream().mapToDouble(Double::doubleValue).toArray(), tokens);
    }
  }

  private String url(String path) {
    return options.baseUrl().replaceAll("/+$", "") + path;
  }

  private static void sleepSeconds(double seconds) {
    try {
      Thread.sleep((long) (seconds * 1000));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InvalidInputException("interrupted");
    }
  }
}
