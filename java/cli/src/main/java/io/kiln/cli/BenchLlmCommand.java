package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.bench.LlmBenchReport;
import io.kiln.bench.LlmBenchRow;
import io.kiln.bench.LlmBenchmark;
import io.kiln.bench.gpu.DecodeRoofline;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.execution.llm.gpu.GpuLlamaRunner;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.util.ProgressBar;
import java.io.PrintWriter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code kiln bench-llm}: serving throughput and latency per number of concurrent requests. */
@Command(
    name = "bench-llm",
    description = {
      "Benchmark LLM serving (CPU or CUDA): output tokens/s, TTFT and inter-token latency"
          + " percentiles, KV block usage and preemptions per concurrency level.",
      "Each level keeps that many random-prompt requests in flight (continuous batching)."
    })
final class BenchLlmCommand implements Callable<Integer> {
  @Mixin LlmModelOptions modelOptions;

  @Mixin SpeculativeOptions speculativeOptions;

  @Option(
      names = "--concurrency",
      split = ",",
      defaultValue = "1,8,32",
      paramLabel = "N[,N...]",
      description = "requests in flight (default: 1,8,32)")
  List<Integer> concurrency;

  @Option(names = "--prompt-len", defaultValue = "128", description = "default: 128")
  int promptLength;

  @Option(names = "--gen-len", defaultValue = "128", description = "default: 128")
  int generateLength;

  @Option(
      names = "--requests",
      description = "requests per level (default: twice the concurrency, at least 4)")
  Integer requests;

  @Option(
      names = "--kv-blocks",
      description = "KV blocks to use (default: enough for the largest level at once)")
  Integer kvBlocks;

  @Option(names = "--max-num-seqs", defaultValue = "256", description = "default: 256")
  int maxNumSeqs;

  @Option(
      names = "--max-batched-tokens",
      defaultValue = "512",
      description = "tokens per step (default: 512)")
  int maxBatchedTokens;

  @Option(
      names = "--shared-prefix",
      defaultValue = "0",
      paramLabel = "TOKENS",
      description =
          "a prefix of this many random ids that every prompt starts with, before its own"
              + " --prompt-len ids, as a shared system prompt (default: 0)")
  int sharedPrefix;

  @Option(
      names = "--no-prefix-cache",
      description = "compute every prompt in full, even a prefix already in the KV cache")
  boolean noPrefixCache;

  @Option(names = "--seed", defaultValue = "42", description = "prompt seed (default: 42)")
  long seed;

  @Option(
      names = "--roofline",
      description =
          "cuda: also time batch-1 decode and report it as a share of the copy bandwidth measured"
              + " in the same run")
  boolean roofline;

  @Mixin ReportOptions reportOptions;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    validate();
    SpeculativeConfig speculative = speculativeOptions.config(spec);
    LlamaConfig config = modelOptions.config();
    int perRequest = tokensPerRequest();
    if (perRequest > config.maxPositions() + 1) {
      throw new InvalidInputException(
          "prompt + generated length "
              + perRequest
              + " exceeds the model context of "
              + config.maxPositions());
    }
    int largest = concurrency.stream().mapToInt(Integer::intValue).max().orElseThrow();
    int blocks = kvBlocks != null ? kvBlocks : largest * modelOptions.blocksFor(perRequest);
    SchedulerConfig scheduler =
        new SchedulerConfig(maxNumSeqs, maxBatchedTokens, 0, !noPrefixCache);
    PrintWriter out = spec.commandLine().getOut();

    Map<String, Object> header =
        reportOptions.header("kiln bench-llm " + modelOptions.model.getFileName());
    header.put("model", modelOptions.model.toString());
    header.put("backend", modelOptions.backend());
    header.put("prompt_len", promptLength);
    header.put("gen_len", generateLength);
    header.put("shared_prefix", sharedPrefix);
    header.put("prefix_caching", !noPrefixCache);
    header.put("kv_blocks", blocks);
    header.put("block_size", modelOptions.blockSize);
    header.put("max_num_seqs", maxNumSeqs);
    header.put("max_batched_tokens", maxBatchedTokens);
    header.put(
        "speculative", SpeculativeOptions.describe(speculative, speculativeOptions.draftModel));
    header.put(
        "threads",
        modelOptions.threads != null
            ? modelOptions.threads
            : Runtime.getRuntime().availableProcessors());
    ReportOptions.machine(header);
    LlmBenchReport report;

    long totalTokens = 0;
    for (int c : concurrency) {
      totalTokens += (long) requestsAt(c) * generateLength;
    }
    ProgressBar progress = new ProgressBar(System.err, totalTokens);
    RunnerOptions runnerOptions =
        modelOptions.runnerOptions(blocks, kvBlocks != null, maxNumSeqs, maxBatchedTokens);
    try (ModelRunner runner = modelOptions.openRunner(runnerOptions.forTarget(speculative));
        ModelRunner draft =
            speculativeOptions.openDraft(speculative, modelOptions, runnerOptions)) {
      if (runner instanceof GpuLlamaRunner gpu) {
        header.put("kv_blocks", gpu.kvPool().usableBlocks());
        header.put("startup", gpu.startupReport().toMap());
        if (roofline) {
          try {
            DecodeRoofline.Result r = DecodeRoofline.measure(gpu, promptLength, generateLength);
            header.put("batch1_roofline", r.toMap());
            System.err.println("[kiln] " + r.line());
          } catch (io.kiln.KilnException e) {
            // The serving levels still run; the report says why the roofline is missing.
            header.put("batch1_roofline_error", e.getMessage());
            System.err.println("[kiln] roofline not measured: " + e.getMessage());
          }
        }
      }
      report = new LlmBenchReport(header);
      LlmBenchmark.Setup setup = new LlmBenchmark.Setup(runner, scheduler, speculative, draft);
      int vocab = runner.spec().vocabSize();
      // Untimed: let the JIT compile the forward pass before the first level.
      LlmBenchmark.run(
          setup,
          1,
          LlmBenchmark.randomPrompts(vocab, 2, promptLength, seed + 1),
          Math.min(generateLength, 8),
          () -> {});
      for (int c : concurrency) {
        String label = "concurrency " + c;
        LlmBenchRow row =
            LlmBenchmark.run(
                setup,
                c,
                LlmBenchmark.withSharedPrefix(
                    LlmBenchmark.randomPrompts(vocab, requestsAt(c), promptLength, seed),
                    sharedPrefix,
                    vocab,
                    seed + 2),
                generateLength,
                () -> progress.step(label));
        report.add(row);
      }
    }
    reportOptions.write(out, report);
    return ExitCodes.OK;
  }

  /** The shared prefix, the request's own prompt and what it generates. */
  private int tokensPerRequest() {
    return sharedPrefix + promptLength + generateLength;
  }

  private int requestsAt(int c) {
    return requests != null ? requests : Math.max(4, 2 * c);
  }

  private void validate() {
    OptionRanges.eachBetween(spec, "--concurrency", concurrency, 1, 1 << 16);
    OptionRanges.between(spec, "--prompt-len", promptLength, 1, MAX_TOKENS);
    OptionRanges.between(spec, "--gen-len", generateLength, 1, MAX_TOKENS);
    OptionRanges.between(spec, "--shared-prefix", sharedPrefix, 0, MAX_TOKENS);
    if (requests != null) {
      OptionRanges.between(spec, "--requests", requests, 1, 1 << 24);
    }
    OptionRanges.between(spec, "--max-num-seqs", maxNumSeqs, 1, 1 << 16);
    OptionRanges.between(spec, "--max-batched-tokens", maxBatchedTokens, 1, MAX_TOKENS);
    if (kvBlocks != null) {
      OptionRanges.between(spec, "--kv-blocks", kvBlocks, 1, 1 << 28);
    }
    modelOptions.checkRanges(spec);
    int perRequest = tokensPerRequest();
    if (kvBlocks != null && kvBlocks < modelOptions.blocksFor(perRequest)) {
      throw new InvalidInputException(
          "--kv-blocks "
              + kvBlocks
              + " cannot hold even one request ("
              + modelOptions.blocksFor(perRequest)
              + " blocks)");
    }
  }

  /** More tokens per request than any context holds is a typo. */
  private static final int MAX_TOKENS = 1 << 24;
}
