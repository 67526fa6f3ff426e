package io.kiln.bench;

import io.kiln.Device;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.LlamaConfig;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * Batch-1 decode speed, plain against speculative, in one process on the CPU or CUDA runners:
 * n-gram lookup and a draft model, each at several K, over prompts that repeat a random passage.
 * The cases take turns on each prompt, so that a change in the machine's state touches all of them
 * alike. Each runner call of a cycle is also timed alone ({@link SpecCostModel}), which gives every
 * case a modeled speedup beside its measured one and draws the speedup against the acceptance rate.
 *
 * <p>Usage: {@code SpecBench TARGET_DIR DRAFT_DIR cpu|cuda OUT_PREFIX REQUESTS GEN_LEN K[,K...]
 * ROUNDS MODELS_TEXT COMMAND [INT8_LM_HEAD]}, INT8_LM_HEAD {@code draft} (default) or {@code off}:
 * the draft's LM head as int8 codes on CUDA.
 */
public final class SpecBench {
  /** The passage each prompt repeats, and how often. */
  static final int PASSAGE = 24;

  static final int REPEATS = 4;
  static final long PROMPT_SEED = 7;

  private SpecBench() {}

  public static void main(String[] args) {
    Path target = Path.of(args[0]);
    Path draft = Path.of(args[1]);
    Device device = Device.parse(args[2]);
    String out = args[3];
    int requests = Integer.parseInt(args[4]);
    int genLen = Integer.parseInt(args[5]);
    List<Integer> ks = new ArrayList<>();
    for (String k : args[6].split(",")) {
      ks.add(Integer.parseInt(k.trim()));
    }
    int rounds = Integer.parseInt(args[7]);
    String modelsText = args[8];
    String command = args[9];
    RunnerOptions.Int8LmHead int8LmHead =
        args.length > 10
            ? RunnerOptions.Int8LmHead.parse(args[10])
            : RunnerOptions.defaults().int8LmHead();

    List<SpecCase> cases = new ArrayList<>();
    cases.add(new SpecCase("plain", null, false));
    for (int k : ks) {
      cases.add(new SpecCase("ngram K=" + k, SpeculativeConfig.ngram(k), false));
    }
    for (int k : ks) {
      cases.add(new SpecCase("draft K=" + k, SpeculativeConfig.draft(k), false));
    }
    cases.add(new SpecCase("draft model alone (plain)", null, true));

    int vocab = LlamaConfig.load(target).vocabSize();
    List<int[]> prompts = repeatedPassages(vocab, requests);
    int threads = Runtime.getRuntime().availableProcessors();
    int blocks = (PASSAGE * REPEATS + genLen + SpeculativeConfig.MAX_TOKENS + 15) / 16 + 1;
    // One request at a time: the runners need no batch beyond one sequence.
    RunnerOptions options =
        RunnerOptions.defaults().withKvBlocks(blocks).withMaxNumSeqs(1).withInt8LmHead(int8LmHead);
    options =
        device == Device.CUDA
            ? options.withStorage(RunnerOptions.Storage.F16)
            : options.withThreads(threads);
    SchedulerConfig scheduler = SchedulerConfig.defaults().withMaxNumSeqs(1);
    String loadBefore = ReportFiles.loadAverage();
    Instant started = Instant.now();
    Map<String, List<LlmBenchRow>> rows = new LinkedHashMap<>();
    List<String> mismatches = new ArrayList<>();
    SpecCostModel costs;
    try (Runners runners = new Runners(target, draft, device, options)) {
      // Untimed: the JIT compiles every path (one-token steps, verification, drafting) first.
      for (SpecCase c : cases) {
        LlmBenchmark.run(runners.setup(c, scheduler), 1, prompts.subList(0, 1), 16, () -> {});
      }
      costs = stepCosts(runners, ks, device == Device.CUDA ? 60 : 7);
      // One slot per round and prompt: every case decodes that prompt in turn, so that the
      // cases compared within a slot ran seconds apart, under the same load.
      // Greedy speculation must give plain decoding's tokens: each run is checked against the
      // plain run of the same slot.
      for (int round = 1; round <= rounds; round++) {
        for (int p = 0; p < prompts.size(); p++) {
          StringBuilder line = new StringBuilder("round " + round + " prompt " + p + ":");
          int[] plainTokens = null; // "plain" runs first
          for (SpecCase c : cases) {
            int[][] tokens = new int[1][];
            LlmBenchRow row =
                LlmBenchmark.run(
                    runners.setup(c, scheduler),
                    1,
                    prompts.subList(p, p + 1),
                    genLen,
                    () -> {},
                    result -> tokens[0] = result.newTokenIds());
            if (c.speculative() == null && !c.draftAlone()) {
              plainTokens = tokens[0];
            } else if (c.speculative() != null && !Arrays.equals(plainTokens, tokens[0])) {
              mismatches.add(c.name() + ", round " + round + ", prompt " + p);
              System.err.println("MISMATCH: " + c.name() + " differs from plain decoding");
            }
            rows.computeIfAbsent(c.name(), n -> new ArrayList<>()).add(row);
            line.append(String.format(Locale.ROOT, " %.1f", row.decodeTokensPerSecond()));
          }
          System.err.println(line + " decode tok/s");
        }
      }
    }
    Map<String, Object> header = new LinkedHashMap<>();
    header.put(
        "title",
        "Speculative decoding on the "
            + (device == Device.CUDA ? "GPU" : "CPU")
            + ": batch-1 decode, plain vs speculative");
    header.put("date", started.toString());
    header.put("command", command);
    header.put("machine", MachineInfo.describe());
    header.put("device", device.name().toLowerCase(Locale.ROOT));
    if (device == Device.CPU) {
      header.put("threads", threads);
    }
    header.put("load_average_before", loadBefore);
    header.put("load_average_after", ReportFiles.loadAverage());
    header.put("models", modelsText);
    header.put("target", target.toString());
    header.put("draft", draft.toString());
    header.put("int8_lm_head", int8LmHead.label());
    header.put(
        "prompts",
        String.format(
            Locale.ROOT,
            "%d prompts, each a random %d-token passage (seed %d) repeated %d times (%d tokens)",
            requests,
            PASSAGE,
            PROMPT_SEED,
            REPEATS,
            PASSAGE * REPEATS));
    header.put("generated_per_request", genLen + " greedy tokens, end-of-sequence ignored");
    header.put("concurrency", 1);
    header.put("rounds", rounds);
    header.put(
        "greedy_outputs",
        mismatches.isEmpty()
            ? "every speculative run gave the tokens of the plain run of its slot"
            : "DIFFERENT from the plain run of the slot: " + String.join("; ", mismatches));
    new SpecBenchReport(header, cases, rows, costs, PASSAGE * REPEATS).write(out);
  }

  /**
   * The runners the cases decode on, opened as the engine's callers open them: a target per
   * verification width on CUDA (its graphs pad a step to K + 1 positions), one for all on the CPU,
   * and the draft for its two-position first rounds.
   */
  static final class Runners implements AutoCloseable {
    private final Path targetDir;
    private final Device device;
    private final RunnerOptions options;
    private final Map<RunnerOptions, ModelRunner> targets = new LinkedHashMap<>();
    private final ModelRunner draft;

    Runners(Path targetDir, Path draftDir, Device device, RunnerOptions options) {
      this.targetDir = targetDir;
      this.device = device;
      this.options = options;
      this.draft = LlmRunners.open(draftDir, device, options.forDraft());
    }

    /** The target runner for plain decoding (null) or speculation as {@code config} says. */
    ModelRunner target(SpeculativeConfig config) {
      RunnerOptions opened = device == Device.CUDA ? options.forTarget(config) : options;
      return targets.computeIfAbsent(opened, o -> LlmRunners.open(targetDir, device, o));
    }

    ModelRunner draft() {
      return draft;
    }

    LlmBenchmark.Setup setup(SpecCase c, SchedulerConfig scheduler) {
      if (c.draftAlone()) {
        return LlmBenchmark.Setup.plain(draft, scheduler);
      }
      return new LlmBenchmark.Setup(
          target(c.speculative()), scheduler, c.speculative(), c.drafts() ? draft : null);
    }

    @Override
    public void close() {
      targets.values().forEach(ModelRunner::close);
      draft.close();
    }
  }

  /**
   * Each runner call of a greedy cycle, timed alone ({@link CallTimer}, median of {@code samples})
   * after a context of one prompt: a plain decode step, the draft's rounds, and a verification per
   * K on the target opened for it.
   */
  static SpecCostModel stepCosts(Runners runners, List<Integer> ks, int samples) {
    int context = PASSAGE * REPEATS;
    int[] prompt = repeatedPassages(runners.draft().spec().vocabSize(), 1).get(0);
    int[] table = new int[(context + SpeculativeConfig.MAX_TOKENS + 1 + 15) / 16];
    Arrays.setAll(table, i -> 1 + i); // block 0 is the pool's null block
    // A call feeding `positions` tokens after the context, the last `tokens` of them wanting one.
    BiFunction<Integer, Integer, List<SequenceChunk>> step =
        (positions, tokens) ->
            List.of(new SequenceChunk(1, Arrays.copyOf(prompt, positions), context, table, tokens));
    List<CallTimer.Call> calls = new ArrayList<>();
    calls.add(new CallTimer.Call(runners.target(null), step.apply(1, 1)));
    calls.add(new CallTimer.Call(runners.draft(), step.apply(1, 1)));
    calls.add(new CallTimer.Call(runners.draft(), step.apply(2, 1)));
    for (int k : ks) {
      ModelRunner target = runners.target(SpeculativeConfig.draft(k));
      calls.add(new CallTimer.Call(target, step.apply(k + 1, k + 1)));
    }
    for (ModelRunner runner : calls.stream().map(CallTimer.Call::runner).distinct().toList()) {
      runner.forward(List.of(new SequenceChunk(1, prompt, 0, table, true)));
    }
    double[][] millis = CallTimer.measure(calls, 1, samples, c -> {});
    Map<Integer, Double> verify = new LinkedHashMap<>();
    for (int i = 0; i < ks.size(); i++) {
      verify.put(ks.get(i), ModelBenchmark.median(millis[3 + i]));
    }
    return new SpecCostModel(
        ModelBenchmark.median(millis[0]),
        verify,
        ModelBenchmark.median(millis[1]),
        ModelBenchmark.median(millis[2]));
  }

  /** Prompts that repeat a random passage: the shape of text n-gram lookup is made for. */
  static List<int[]> repeatedPassages(int vocab, int requests) {
    List<int[]> passages = LlmBenchmark.randomPrompts(vocab, requests, PASSAGE, PROMPT_SEED);
    List<int[]> prompts = new ArrayList<>();
    for (int[] passage : passages) {
      int[] p = new int[PASSAGE * REPEATS];
      for (int r = 0; r < REPEATS; r++) {
        System.arraycopy(passage, 0, p, r * PASSAGE, PASSAGE);
      }
      prompts.add(p);
    }
    return prompts;
  }
}
