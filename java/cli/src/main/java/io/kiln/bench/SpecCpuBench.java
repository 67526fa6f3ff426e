package io.kiln.bench;

import io.kiln.Device;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.RunnerOptions;
import io.kiln.execution.llm.SchedulerConfig;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.model.llama.LlamaConfig;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Batch-1 decode speed on the CPU, plain against speculative, in one process: n-gram lookup and a
 * draft model, each at several K, over prompts that repeat a random passage. Every case runs once
 * per round, the cases interleaved, so that a change in the machine's load over the run touches all
 * of them alike.
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
    String loadBefore = loadAverage();
    Instant started = Instant.now();
    Map<String, List<LlmBenchRow>> rows = new LinkedHashMap<>();
    try (ModelRunner targetRunner = LlmRunners.open(target, Device.CPU, options);
        ModelRunner draftRunner = LlmRunners.open(draft, Device.CPU, options)) {
      // Untimed: the JIT compiles every path (one-token steps, verification, drafting) first.
      for (Case c : cases) {
        LlmBenchmark.run(
            setup(c, targetRunner, draftRunner, scheduler), 1, prompts.subList(0, 1), 16, () -> {});
      }
      for (int round = 1; round <= rounds; round++) {
        for (Case c : cases) {
          LlmBenchRow row =
              LlmBenchmark.run(
                  setup(c, targetRunner, draftRunner, scheduler), 1, prompts, genLen, () -> {});
          rows.computeIfAbsent(c.name(), n -> new ArrayList<>()).add(row);
          System.err.printf(
              Locale.ROOT,
              "round %d %-28s %.2f decode tok/s%n",
              round,
              c.name(),
              row.decodeTokensPerSecond());
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
    header.put("load_average_after", loadAverage());
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
    write(out, header, cases, rows);
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
      Map<String, List<LlmBenchRow>> rows) {
    double plain = meanDecode(rows.get("plain"));
    StringBuilder md = new StringBuilder("# ").append(header.get("title")).append("\n\n");
    header.forEach(
        (k, v) -> {
          if (!k.equals("title")) {
            md.append("- ").append(k).append(": ").append(v).append('\n');
          }
        });
    md.append(
        "\nDecode tok/s is a request's tokens after its first over the time they took (the"
            + " mean gap between tokens), averaged over the rounds; the range is the rounds'"
            + " lowest and highest. Mean accepted length counts the target's own token of each"
            + " verification too, so it is the tokens one target step yields.\n\n");
    md.append(
        "| decoding | decode tok/s | range | speedup vs plain | proposed | accepted | acceptance"
            + " | mean accepted length |\n");
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    List<Map<String, Object>> json = new ArrayList<>();
    for (Case c : cases) {
      List<LlmBenchRow> r = rows.get(c.name());
      double decode = meanDecode(r);
      double min = r.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).min().orElseThrow();
      double max = r.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).max().orElseThrow();
      LlmBenchRow.Speculation spec = total(r);
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %.2f | %.2f–%.2f | %.2fx | %s | %s | %s | %s |%n",
              c.name(),
              decode,
              min,
              max,
              decode / plain,
              spec == null ? "" : Long.toString(spec.proposed()),
              spec == null ? "" : Long.toString(spec.accepted()),
              spec == null ? "" : String.format(Locale.ROOT, "%.3f", spec.acceptanceRate()),
              spec == null ? "" : String.format(Locale.ROOT, "%.2f", spec.meanAcceptedLength())));
      Map<String, Object> j = new LinkedHashMap<>();
      j.put("decoding", c.name());
      j.put("decode_tokens_per_second", decode);
      j.put("decode_tokens_per_second_min", min);
      j.put("decode_tokens_per_second_max", max);
      j.put("speedup_vs_plain", decode / plain);
      if (spec != null) {
        j.put("spec_tokens", c.speculative().numTokens());
        j.put("spec_steps", spec.steps());
        j.put("spec_proposed", spec.proposed());
        j.put("spec_accepted", spec.accepted());
        j.put("acceptance_rate", finiteOrNull(spec.acceptanceRate()));
        j.put("mean_accepted_length", finiteOrNull(spec.meanAcceptedLength()));
      }
      List<Map<String, Object>> perRound = new ArrayList<>();
      r.forEach(row -> perRound.add(row.toJson()));
      j.put("rounds", perRound);
      json.add(j);
    }
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    Map<String, Object> root = new LinkedHashMap<>(header);
    root.put("rows", json);
    ReportFiles.writeJson(Path.of(out + ".json"), root);
    System.out.print(md);
  }

  private static double meanDecode(List<LlmBenchRow> rows) {
    return rows.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).average().orElseThrow();
  }

  /** The speculation counts of all rounds together; null for a case that does not speculate. */
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

  private static String loadAverage() {
    try {
      return Files.readString(Path.of("/proc/loadavg")).trim();
    } catch (IOException e) {
      return "unknown";
    }
  }
}
