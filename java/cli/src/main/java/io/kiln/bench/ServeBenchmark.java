package io.kiln.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.stream.Stream;

/**
 * Load on an OpenAI-compatible server over HTTP: streamed completions of random token prompts at a
 * fixed concurrency (closed loop), or arriving at a Poisson rate with at most that many in flight.
 * TTFT and inter-token latency are timed at the client, from the server-sent events.
 */
public final class ServeBenchmark {
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
  private final HttpClient http;

  public ServeBenchmark(Options options) {
    this.options = options;
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
  }

  /** The model to ask for: the one given, else the server's first. */
  public String model() {
    if (options.model() != null) {
      return options.model();
    }
    try {
      HttpResponse<String> r =
          http.send(request("/v1/models").GET().build(), HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) {
        throw new BackendException("GET /v1/models: HTTP " + r.statusCode() + ": " + r.body());
      }
      return JSON.readTree(r.body()).at("/data/0/id").asText();
    } catch (IOException e) {
      throw new BackendException("cannot reach " + options.baseUrl() + ": " + e.getMessage(), e);
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
        null, // the engine's KV use and speculation are not seen over HTTP
        null);
  }

  private record Timing(double ttftMillis, double[] itlMillis, long tokens) {}

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

  /** One streamed request: tokens counted from each event's {@code token_ids}. */
  private Timing stream(String body) {
    long sent = System.nanoTime();
    HttpResponse<Stream<String>> response;
    try {
      response =
          http.send(
              request("/v1/completions")
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString(body))
                  .build(),
              HttpResponse.BodyHandlers.ofLines());
    } catch (IOException e) {
      throw new BackendException("request failed: " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted", e);
    }
    if (response.statusCode() != 200) {
      String text = String.join("\n", response.body().toList());
      throw new BackendException("HTTP " + response.statusCode() + ": " + text);
    }
    double ttft = Double.NaN;
    List<Double> itl = new ArrayList<>();
    long tokens = 0;
    long last = sent;
    try (Stream<String> lines = response.body()) {
      for (String line : (Iterable<String>) lines::iterator) {
        if (!line.startsWith("data: {")) {
          continue;
        }
        JsonNode ids = JSON.readTree(line.substring(6)).at("/choices/0/token_ids");
        int n = ids.isArray() ? ids.size() : 0;
        if (n == 0) {
          continue;
        }
        long now = System.nanoTime();
        if (tokens == 0) {
          ttft = (now - sent) / 1e6;
          n--;
        }
        // Tokens that arrive together share the gap since the last event.
        for (int i = 0; i < n; i++) {
          itl.add((now - last) / 1e6 / n);
        }
        tokens += ids.size();
        last = now;
      }
    } catch (IOException e) {
      throw new BackendException("bad event stream: " + e.getMessage(), e);
    }
    return new Timing(ttft, itl.stream().mapToDouble(Double::doubleValue).toArray(), tokens);
  }

  private HttpRequest.Builder request(String path) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(options.baseUrl().replaceAll("/+$", "") + path))
            .timeout(Duration.ofMinutes(10));
    if (options.apiKey() != null) {
      b.header("Authorization", "Bearer " + options.apiKey());
    }
    return b;
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
