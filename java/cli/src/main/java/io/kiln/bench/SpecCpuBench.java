package io.kiln.bench;

import io.kiln.Device;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SequenceChunk;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.LlamaConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Batch-1 decode speed on the CPU, plain against speculative, in one process: n-gram lookup and a
 * draft model, each at several K, over prompts that repeat a random passage. The cases take turns
 * on each prompt, so that a change in the machine's load over the run touches all of them alike.
 *
 * <p>Usage: {@code SpecCpuBench TARGET_DIR DRAFT_DIR OUT_PREFIX REQUESTS GEN_LEN K[,K...] ROUNDS
 * MODELS_TEXT COMMAND}
 */
public final class SpecCpuBench {
  /** The passage each prompt repeats, and how often. */
  static final int PASSAGE = 24;

  static final int REPEATS = 4;
  static final long PROMPT_SEED = 7;

  private SpecCpuBench() {}

  /** One way of decoding: on the target unless {@code draftAlone}. */
  record Case(String name, SpeculativeConfig speculative, boolean draftAlone) {}

  public static void main(String[] args) throws IOException {
    Path target = Path.of(args[0]);
    Path draft = Path.of(args[1]);
    String out = args[2];
    int requests = Integer.parseInt(args[3]);
    int genLen = Integer.parseInt(args[4]);
    List<Integer> ks = new ArrayList<>();
    for (String k : args[5].split(",")) {
      ks.add(Integer.parseInt(k.trim()));
    }
    int rounds = Integer.parseInt(args[6]);
    String modelsText = args[7];
    String command = args[8];

    List<Case> cases = new ArrayList<>();
    cases.add(new Case("plain", null, false));
    for (int k : ks) {
      cases.add(new Case("ngram K=" + k, SpeculativeConfig.ngram(k), false));
    }
    for (int k : ks) {
      cases.add(new Case("draft K=" + k, SpeculativeConfig.draft(k), false));
    }
    cases.add(new Case("draft model alone (plain)", null, true));

    int vocab = LlamaConfig.load(target).vocabSize();
    List<int[]> prompts = repeatedPassages(vocab, requests);
    int threads = Runtime.getRuntime().availableProcessors();
    int blocks = (PASSAGE * REPEATS + genLen + SpeculativeConfig.MAX_TOKENS + 15) / 16 + 1;
    RunnerOptions options = RunnerOptions.defaults().withKvBlocks(blocks).withThreads(threads);
    SchedulerConfig scheduler = SchedulerConfig.defaults();
    String loadBefore = ReportFiles.loadAverage();
    Instant started = Instant.now();
    Map<String, List<LlmBenchRow>> rows = new LinkedHashMap<>();
    List<StepCost> stepCosts;
    try (ModelRunner targetRunner = LlmRunners.open(target, Device.CPU, options);
        ModelRunner draftRunner = LlmRunners.open(draft, Device.CPU, options)) {
      // Untimed: the JIT compiles every path (one-token steps, verification, drafting) first.
      for (Case c : cases) {
        LlmBenchmark.run(
            setup(c, targetRunner, draftRunner, scheduler), 1, prompts.subList(0, 1), 16, () -> {});
      }
      stepCosts = stepCosts(targetRunner, draftRunner, ks, blocks);
      // One slot per round and prompt: every case decodes that prompt in turn, so that the
      // cases compared within a slot ran seconds apart, under the same load.
      for (int round = 1; round <= rounds; round++) {
        for (int p = 0; p < prompts.size(); p++) {
          StringBuilder line = new StringBuilder("round " + round + " prompt " + p + ":");
          for (Case c : cases) {
            LlmBenchRow row =
                LlmBenchmark.run(
                    setup(c, targetRunner, draftRunner, scheduler),
                    1,
                    prompts.subList(p, p + 1),
                    genLen,
                    () -> {});
            rows.computeIfAbsent(c.name(), n -> new ArrayList<>()).add(row);
            line.append(String.format(Locale.ROOT, " %.1f", row.decodeTokensPerSecond()));
          }
          System.err.println(line + " decode tok/s");
        }
      }
    }
    Map<String, Object> header = new LinkedHashMap<>();
    header.put("title", "Speculative decoding on the CPU: batch-1 decode, plain vs speculative");
    header.put("date", started.toString());
    header.put("command", command);
    header.put("machine", MachineInfo.describe());
    header.put("threads", threads);
    header.put("load_average_before", loadBefore);
    header.put("load_average_after", ReportFiles.loadAverage());
    header.put("models", modelsText);
    header.put("target", target.toString());
    header.put("draft", draft.toString());
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
    write(out, header, cases, rows, stepCosts);
  }

  /** The median time of one step over {@code positions} tokens, on the target and the draft. */
  record StepCost(int positions, double targetMillis, double draftMillis) {}

  /** Steps of a position count's samples each, the counts taking turns. */
  private static final int STEP_SAMPLES = 7;

  /**
   * What a step costs by the positions it computes (all with logits, as a verification wants): one
   * (plain decoding), and K+1 for each K (a verification), after a context of one prompt.
   */
  private static List<StepCost> stepCosts(
      ModelRunner target, ModelRunner draft, List<Integer> ks, int blocks) {
    List<Integer> sizes = new ArrayList<>(List.of(1));
    ks.forEach(k -> sizes.add(k + 1));
    int[] table = new int[blocks];
    for (int i = 0; i < blocks; i++) {
      table[i] = 1 + i; // block 0 is the pool's null block
    }
    int context = PASSAGE * REPEATS;
    int[] prompt = repeatedPassages(target.spec().vocabSize(), 1).get(0);
    double[][][] samples = new double[2][sizes.size()][STEP_SAMPLES];
    ModelRunner[] runners = {target, draft};
    for (ModelRunner runner : runners) {
      runner.forward(List.of(new SequenceChunk(1, prompt, 0, table, true)));
    }
    for (int sample = -1; sample < STEP_SAMPLES; sample++) { // sample -1 warms up
      for (int s = 0; s < sizes.size(); s++) {
        int n = sizes.get(s);
        int[] tokens = java.util.Arrays.copyOf(prompt, n);
        for (int r = 0; r < runners.length; r++) {
          // The same positions each time: their K/V are simply written again.
          long start = System.nanoTime();
          runners[r].forward(List.of(new SequenceChunk(1, tokens, context, table, n)));
          if (sample >= 0) {
            samples[r][s][sample] = (System.nanoTime() - start) / 1e6;
          }
        }
      }
    }
    List<StepCost> costs = new ArrayList<>();
    for (int s = 0; s < sizes.size(); s++) {
      costs.add(
          new StepCost(
              sizes.get(s),
              ModelBenchmark.median(samples[0][s]),
              ModelBenchmark.median(samples[1][s])));
    }
    return costs;
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

  private static LlmBenchmark.Setup setup(
      Case c, ModelRunner target, ModelRunner draft, SchedulerConfig scheduler) {
    if (c.draftAlone()) {
      return LlmBenchmark.Setup.plain(draft, scheduler);
    }
    boolean drafts =
        c.speculative() != null && c.speculative().method() == SpeculativeConfig.Method.DRAFT;
    return new LlmBenchmark.Setup(target, scheduler, c.speculative(), drafts ? draft : null);
  }

  private static void write(
      String out,
      Map<String, Object> header,
      List<Case> cases,
      Map<String, List<LlmBenchRow>> rows,
      List<StepCost> stepCosts) {
    List<LlmBenchRow> plain = rows.get("plain");
    StringBuilder md = new StringBuilder("# ").append(header.get("title")).append("\n\n");
    header.forEach(
        (k, v) -> {
          if (!k.equals("title")) {
            md.append("- ").append(k).append(": ").append(v).append('\n');
          }
        });
    md.append(
        "\nDecode tok/s is a request's tokens after its first over the time they took (the"
            + " mean gap between tokens), averaged over the runs (one per round and prompt), with"
            + " the runs' lowest and highest. Within a round, each prompt is decoded by every case"
            + " in turn; the speedup is the median over those slots of a case's decode tok/s over"
            + " plain decoding's in the same slot (lowest and highest beside it), so that load"
            + " which changes over the run falls on both sides of each ratio. Mean accepted length"
            + " counts the target's own token of each verification too: it is the tokens one"
            + " target step yields.\n\n");
    md.append(
        "| decoding | decode tok/s | range | speedup vs plain | range | proposed | accepted"
            + " | acceptance | mean accepted length |\n");
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    List<Map<String, Object>> json = new ArrayList<>();
    for (Case c : cases) {
      List<LlmBenchRow> r = rows.get(c.name());
      double decode = meanDecode(r);
      double min = r.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).min().orElseThrow();
      double max = r.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).max().orElseThrow();
      double[] speedups = new double[r.size()];
      for (int i = 0; i < speedups.length; i++) {
        speedups[i] = r.get(i).decodeTokensPerSecond() / plain.get(i).decodeTokensPerSecond();
      }
      double speedup = ModelBenchmark.median(speedups);
      double lowest = java.util.Arrays.stream(speedups).min().orElseThrow();
      double highest = java.util.Arrays.stream(speedups).max().orElseThrow();
      LlmBenchRow.Speculation spec = total(r);
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %.2f | %.2f–%.2f | %.2fx | %.2f–%.2f | %s | %s | %s | %s |%n",
              c.name(),
              decode,
              min,
              max,
              speedup,
              lowest,
              highest,
              spec == null ? "" : Long.toString(spec.proposed()),
              spec == null ? "" : Long.toString(spec.accepted()),
              spec == null ? "" : String.format(Locale.ROOT, "%.3f", spec.acceptanceRate()),
              spec == null ? "" : String.format(Locale.ROOT, "%.2f", spec.meanAcceptedLength())));
      Map<String, Object> j = new LinkedHashMap<>();
      j.put("decoding", c.name());
      j.put("decode_tokens_per_second", decode);
      j.put("decode_tokens_per_second_min", min);
      j.put("decode_tokens_per_second_max", max);
      j.put("speedup_vs_plain", speedup);
      j.put("speedup_vs_plain_per_slot", speedups);
      if (spec != null) {
        j.put("spec_tokens", c.speculative().numTokens());
        j.put("spec_steps", spec.steps());
        j.put("spec_proposed", spec.proposed());
        j.put("spec_accepted", spec.accepted());
        j.put("acceptance_rate", finiteOrNull(spec.acceptanceRate()));
        j.put("mean_accepted_length", finiteOrNull(spec.meanAcceptedLength()));
      }
      List<Map<String, Object>> runs = new ArrayList<>();
      r.forEach(row -> runs.add(row.toJson()));
      j.put("runs", runs);
      json.add(j);
    }
    md.append(
        "\nWhat one step costs by the positions it computes, each with logits as in a"
            + " verification, at a context of "
            + PASSAGE * REPEATS
            + " tokens (median of "
            + STEP_SAMPLES
            + " steps, the sizes taking turns):\n\n");
    md.append("| positions | target ms | vs one position | draft ms | vs one position |\n");
    md.append("|---:|---:|---:|---:|---:|\n");
    List<Map<String, Object>> steps = new ArrayList<>();
    for (StepCost c : stepCosts) {
      md.append(
          String.format(
              Locale.ROOT,
              "| %d | %.1f | %.2fx | %.1f | %.2fx |%n",
              c.positions(),
              c.targetMillis(),
              c.targetMillis() / stepCosts.get(0).targetMillis(),
              c.draftMillis(),
              c.draftMillis() / stepCosts.get(0).draftMillis()));
      Map<String, Object> j = new LinkedHashMap<>();
      j.put("positions", c.positions());
      j.put("target_ms", c.targetMillis());
      j.put("draft_ms", c.draftMillis());
      steps.add(j);
    }
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    Map<String, Object> root = new LinkedHashMap<>(header);
    root.put("step_costs", steps);
    root.put("rows", json);
    ReportFiles.writeJson(Path.of(out + ".json"), root);
    System.out.print(md);
  }

  private static double meanDecode(List<LlmBenchRow> rows) {
    return rows.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).average().orElseThrow();
  }

  /** The speculation counts of all runs together; null for a case that does not speculate. */
  private static LlmBenchRow.Speculation total(List<LlmBenchRow> rows) {
    if (rows.get(0).speculation() == null) {
      return null;
    }
    long steps = 0;
    long proposed = 0;
    long accepted = 0;
    for (LlmBenchRow r : rows) {
      steps += r.speculation().steps();
      proposed += r.speculation().proposed();
      accepted += r.speculation().accepted();
    }
    return new LlmBenchRow.Speculation(steps, proposed, accepted);
  }

  private static Double finiteOrNull(double v) {
    return Double.isFinite(v) ? v : null;
  }
}
