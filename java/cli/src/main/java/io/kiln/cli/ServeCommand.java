package io.kiln.cli;

import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.server.KilnServer;
import io.kiln.server.ServerOptions;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code kiln serve}: an OpenAI-compatible HTTP server for one model, until interrupted. */
@Command(
    name = "serve",
    description = {
      "Serve a Llama-family model over an OpenAI-compatible HTTP API: /v1/models,"
          + " /v1/chat/completions, /v1/completions, /v1/embeddings, /health, /metrics.",
      "Stops on Ctrl-C (SIGINT) or SIGTERM, letting streams in flight finish first."
    })
final class ServeCommand implements Callable<Integer> {
  @Mixin LlmModelOptions modelOptions;

  @Mixin SpeculativeOptions speculativeOptions;

  @Option(
      names = "--served-model-name",
      paramLabel = "NAME",
      description = "the model name clients send (default: the directory name)")
  String servedModelName;

  @Option(names = "--host", defaultValue = "127.0.0.1", description = "default: 127.0.0.1")
  String host;

  @Option(
      names = "--port",
      defaultValue = "8000",
      description = "default: 8000; 0 picks a free port (printed)")
  int port;

  @Option(
      names = "--api-key",
      paramLabel = "KEY",
      description = "clients must send 'Authorization: Bearer KEY' (default: env KILN_API_KEY)")
  String apiKey;

  @Option(
      names = "--max-num-seqs",
      defaultValue = "64",
      description = "most requests generating at once (default: 64)")
  int maxNumSeqs;

  @Option(
      names = "--max-batched-tokens",
      defaultValue = "512",
      description = "most tokens in one engine step (default: 512)")
  int maxBatchedTokens;

  @Option(
      names = "--max-queue",
      defaultValue = "1024",
      description = "requests that may wait beyond --max-num-seqs before 429 (default: 1024)")
  int maxQueue;

  @Option(
      names = "--kv-blocks",
      description =
          "KV blocks (default: cpu 4096 or one full context if more; cuda fills free memory)")
  Integer kvBlocks;

  @Option(
      names = "--embedding-model",
      defaultValue = "default",
      paramLabel = "default|PATH|none",
      description =
          "default: the embedded all-MiniLM-L6-v2; PATH: an encoder ONNX with tokenizer.json"
              + " beside it; none: no /v1/embeddings")
  String embeddingModel;

  @Option(
      names = "--max-body-bytes",
      defaultValue = "16777216",
      description = "larger request bodies get 413 (default: 16 MiB)")
  long maxBodyBytes;

  @Option(
      names = "--shutdown-grace",
      defaultValue = "30",
      paramLabel = "SECONDS",
      description = "how long shutdown lets streams in flight finish (default: 30)")
  int shutdownGrace;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  private static final int DEFAULT_CPU_KV_BLOCKS = 4096;

  private final CountDownLatch stopped = new CountDownLatch(1);
  private volatile KilnServer server;

  @Override
  public Integer call() throws InterruptedException {
    OptionRanges.between(spec, "--port", port, 0, 65535);
    OptionRanges.between(spec, "--max-num-seqs", maxNumSeqs, 1, 1 << 16);
    OptionRanges.between(spec, "--max-batched-tokens", maxBatchedTokens, 1, 1 << 24);
    OptionRanges.between(spec, "--max-queue", maxQueue, 0, 1 << 24);
    OptionRanges.between(spec, "--max-body-bytes", maxBodyBytes, 1024L, 1L << 31);
    OptionRanges.between(spec, "--shutdown-grace", shutdownGrace, 0, 3600);
    if (kvBlocks != null) {
      OptionRanges.between(spec, "--kv-blocks", kvBlocks, 1, 1 << 28);
    }
    modelOptions.checkRanges(spec);
    SpeculativeConfig speculative = speculativeOptions.config(spec);
    LlamaConfig config = modelOptions.config();
    int context =
        modelOptions.maxModelLen > 0
            ? Math.min(modelOptions.maxModelLen, config.maxPositions())
            : config.maxPositions();
    int blocks =
        kvBlocks != null
            ? kvBlocks
            : Math.max(DEFAULT_CPU_KV_BLOCKS, modelOptions.blocksFor(context));
    RunnerOptions runner =
        modelOptions.runnerOptions(blocks, kvBlocks != null, maxNumSeqs, maxBatchedTokens);
    String key = apiKey != null ? apiKey : System.getenv("KILN_API_KEY");
    ServerOptions options =
        ServerOptions.defaults(modelOptions.model)
            .withServedModelName(servedModelName)
            .withDevice(modelOptions.deviceKind())
            .withRunnerOptions(runner)
            .withScheduler(new SchedulerConfig(maxNumSeqs, maxBatchedTokens, 0, true))
            .withAddress(host, port)
            .withApiKey(key == null || key.isEmpty() ? null : key)
            .withMaxQueue(maxQueue)
            .withMaxModelLen(modelOptions.maxModelLen)
            .withEmbeddingModel(embeddingModel)
            .withMaxBodyBytes(maxBodyBytes)
            .withShutdownGrace(Duration.ofSeconds(shutdownGrace))
            .withSpeculative(speculative, speculativeOptions.draftModel);
    server = KilnServer.start(options);
    Thread hook = new Thread(this::stop, "kiln-serve-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    PrintWriter out = spec.commandLine().getOut();
    out.printf(
        "kiln: serving %s on http://%s:%d/v1 (port %d)%n",
        server.modelName(), host, server.port(), server.port());
    out.flush();
    stopped.await();
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      // The JVM is exiting: the hook stopped the server.
    }
    return ExitCodes.OK;
  }

  /** Closes the server gracefully and lets {@link #call} return (SIGINT/SIGTERM, or a test). */
  void stop() {
    KilnServer running = server;
    if (running != null) {
      running.close();
    }
    stopped.countDown();
  }
}
