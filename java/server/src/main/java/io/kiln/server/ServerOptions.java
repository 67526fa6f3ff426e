package io.kiln.server;

import io.kiln.Device;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SpeculativeConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * How {@link KilnServer} serves one model. Immutable; change a setting with its wither.
 *
 * @param model Hugging Face model directory (config.json, weights, tokenizer.json)
 * @param servedModelName the name clients pass as {@code model}; null means the directory name
 * @param port 0 binds an ephemeral port ({@link KilnServer#port()} says which)
 * @param apiKey the bearer key clients must send, or null for none
 * @param maxQueue requests that may wait beyond the {@code maxNumSeqs} running ones before 429
 * @param maxModelLen longest prompt plus completion, 0 for the engine's limit
 * @param embeddingModel {@code default} (embedded all-MiniLM-L6-v2), an encoder ONNX path with its
 *     tokenizer.json beside it, or {@code none}
 * @param maxBodyBytes larger request bodies get 413
 * @param shutdownGrace how long close lets streams in flight finish
 * @param speculative how the engine speculates, or null for plain decoding
 * @param draftModel the draft model's directory for draft speculation, opened like {@code model}
 *     (same device and runner options); null otherwise
 */
public record ServerOptions(
    Path model,
    String servedModelName,
    Device device,
    RunnerOptions runnerOptions,
    SchedulerConfig scheduler,
    String host,
    int port,
    String apiKey,
    int maxQueue,
    int maxModelLen,
    String embeddingModel,
    long maxBodyBytes,
    Duration shutdownGrace,
    SpeculativeConfig speculative,
    Path draftModel) {

  public static final String DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2";

  public ServerOptions {
    if (model == null) {
      throw new IllegalArgumentException("model is null");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be in [0, 65535]: " + port);
    }
    if (maxQueue < 0 || maxModelLen < 0 || maxBodyBytes < 1) {
      throw new IllegalArgumentException("maxQueue, maxModelLen and maxBodyBytes must be >= 0");
    }
    boolean drafts = speculative != null && speculative.method() == SpeculativeConfig.Method.DRAFT;
    if (drafts != (draftModel != null)) {
      throw new IllegalArgumentException(
          "a draft model goes with draft speculation and only with it: "
              + speculative
              + ", draft "
              + draftModel);
    }
  }

  /** Serves {@code model} on the CPU at 127.0.0.1:8000 with the default embedder. */
  public static ServerOptions defaults(Path model) {
    return new ServerOptions(
        model,
        null,
        Device.CPU,
        RunnerOptions.defaults().withKvBlocks(1024),
        SchedulerConfig.defaults(),
        "127.0.0.1",
        8000,
        null,
        1024,
        0,
        "default",
        16L << 20,
        Duration.ofSeconds(30),
        null,
        null);
  }

  /** The name clients use: {@code servedModelName}, or the directory's name. */
  public String modelName() {
    if (servedModelName != null && !servedModelName.isBlank()) {
      return servedModelName;
    }
    Path name = model.toAbsolutePath().normalize().getFileName();
    return name == null ? "model" : name.toString();
  }

  public ServerOptions withServedModelName(String name) {
    return with(copy -> copy.servedModelName = name);
  }

  public ServerOptions withDevice(Device d) {
    return with(copy -> copy.device = d);
  }

  public ServerOptions withRunnerOptions(RunnerOptions r) {
    return with(copy -> copy.runnerOptions = r);
  }

  public ServerOptions withScheduler(SchedulerConfig s) {
    return with(copy -> copy.scheduler = s);
  }

  public ServerOptions withAddress(String h, int p) {
    return with(
        copy -> {
          copy.host = h;
          copy.port = p;
        });
  }

  public ServerOptions withApiKey(String key) {
    return with(copy -> copy.apiKey = key);
  }

  public ServerOptions withMaxQueue(int n) {
    return with(copy -> copy.maxQueue = n);
  }

  public ServerOptions withMaxModelLen(int n) {
    return with(copy -> copy.maxModelLen = n);
  }

  public ServerOptions withEmbeddingModel(String e) {
    return with(copy -> copy.embeddingModel = e);
  }

  public ServerOptions withMaxBodyBytes(long n) {
    return with(copy -> copy.maxBodyBytes = n);
  }

  public ServerOptions withShutdownGrace(Duration d) {
    return with(copy -> copy.shutdownGrace = d);
  }

  /** Speculative decoding, with the draft model's directory for draft speculation (else null). */
  public ServerOptions withSpeculative(SpeculativeConfig config, Path draft) {
    return with(
        copy -> {
          copy.speculative = config;
          copy.draftModel = draft;
        });
  }

  private ServerOptions with(Consumer<Copy> change) {
    Copy copy = new Copy(this);
    change.accept(copy);
    return copy.build();
  }

  /** A mutable copy, so that each wither names only the setting it changes. */
  private static final class Copy {
    Path model;
    String servedModelName;
    Device device;
    RunnerOptions runnerOptions;
    SchedulerConfig scheduler;
    String host;
    int port;
    String apiKey;
    int maxQueue;
    int maxModelLen;
    String embeddingModel;
    long maxBodyBytes;
    Duration shutdownGrace;
    SpeculativeConfig speculative;
    Path draftModel;

    Copy(ServerOptions options) {
      model = options.model;
      servedModelName = options.servedModelName;
      device = options.device;
      runnerOptions = options.runnerOptions;
      scheduler = options.scheduler;
      host = options.host;
      port = options.port;
      apiKey = options.apiKey;
      maxQueue = options.maxQueue;
      maxModelLen = options.maxModelLen;
      embeddingModel = options.embeddingModel;
      maxBodyBytes = options.maxBodyBytes;
      shutdownGrace = options.shutdownGrace;
      speculative = options.speculative;
      draftModel = options.draftModel;
    }

    ServerOptions build() {
      return new ServerOptions(
          model,
          servedModelName,
          device,
          runnerOptions,
          scheduler,
          host,
          port,
          apiKey,
          maxQueue,
          maxModelLen,
          embeddingModel,
          maxBodyBytes,
          shutdownGrace,
          speculative,
          draftModel);
    }
  }
}
