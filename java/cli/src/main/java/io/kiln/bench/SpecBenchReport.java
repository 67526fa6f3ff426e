package io.kiln.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The speculation bench's report: per case the decode rate, the speedup over plain decoding
 * measured slot by slot and modeled from the timed calls, the speculation counts and where a step's
 * time went; the calls' costs; as Markdown, JSON and a plot of the speedup against the acceptance
 * rate.
 */
final class SpecBenchReport {
  private final Map<String, Object> header;
  private final List<SpecCase> cases;
  private final Map<String, List<LlmBenchRow>> rows;
  private final SpecCostModel costs;
  private final int context;

  /**
   * @param rows case name -> its runs, one per slot, in the same slot order for every case
   * @param context the positions before the timed calls
   */
  SpecBenchReport(
      Map<String, Object> header,
      List<SpecCase> cases,
      Map<String, List<LlmBenchRow>> rows,
      SpecCostModel costs,
      int context) {
    this.header = header;
    this.cases = cases;
    this.rows = rows;
    this.costs = costs;
    this.context = context;
  }

  /** One case's figures over its runs. */
  private record Summary(
      double decode,
      double min,
      double max,
      double[] speedups,
      double firstTokenMillis,
      LlmBenchRow.Speculation speculation,
      long decodeSteps,
      double stepMillis,
      double proposeMillis,
      double forwardMillis) {
    double speedup() {
      return ModelBenchmark.median(speedups);
    }
  }

  /** Writes OUT.md, OUT.json and OUT.png and prints the Markdown. */
  void write(String out) {
    StringBuilder md = new StringBuilder("# ").append(header.get("title")).append("\n\n");
    header.forEach(
        (k, v) -> {
          if (!k.equals("title")) {
            md.append("- ").append(k).append(": ").append(v).append('\n');
          }
        });
    md.append(
        "\nDecode tok/s is a request's tokens after its first over the time they took (the mean"
            + " gap between tokens), averaged over the runs (one per round and prompt), with the"
            + " runs' lowest and highest. Within a round, each prompt is decoded by every case in"
            + " turn; the speedup is the median over those slots of a case's decode tok/s over"
            + " plain decoding's in the same slot (lowest and highest beside it), so that load"
            + " which changes over the run falls on both sides of each ratio. The modeled speedup"
            + " prices a case's decode steps, verifications and accepted tokens with the calls"
            + " timed alone (below): a step without a proposal as a decode step, a verification as"
            + " K + 1 positions and, for a draft, its rounds. It is what the case would reach if the"
            + " engine cost nothing between calls (on the CPU, where a shorter proposal costs less,"
            + " n-gram lookup is priced on the slow side). Mean accepted"
            + " length counts the target's own token of each verification too: it is the tokens"
            + " one target step yields. First token ms is the mean time to a request's first token"
            + " (its prompt step; with a draft model, the draft's pass over the prompt too).\n\n");
    md.append(
        "| decoding | decode tok/s | range | speedup vs plain | range | modeled | first token ms"
            + " | proposed | accepted | acceptance | mean accepted length |\n");
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    List<Map<String, Object>> json = new ArrayList<>();
    Map<String, Summary> summaries = new LinkedHashMap<>();
    for (SpecCase c : cases) {
      Summary s = summarize(rows.get(c.name()));
      summaries.put(c.name(), s);
      double modeled = modeled(c, s);
      LlmBenchRow.Speculation spec = s.speculation();
      md.append(
          String.format(
              Locale.ROOT,
              "| %s | %.2f | %.2f–%.2f | %.2fx | %.2f–%.2f | %s | %.1f | %s | %s | %s | %s |%n",
              c.name(),
              s.decode(),
              s.min(),
              s.max(),
              s.speedup(),
              Arrays.stream(s.speedups()).min().orElseThrow(),
              Arrays.stream(s.speedups()).max().orElseThrow(),
              Double.isNaN(modeled) ? "" : String.format(Locale.ROOT, "%.2fx", modeled),
              s.firstTokenMillis(),
              spec == null ? "" : Long.toString(spec.proposed()),
              spec == null ? "" : Long.toString(spec.accepted()),
              spec == null ? "" : String.format(Locale.ROOT, "%.3f", spec.acceptanceRate()),
              spec == null ? "" : String.format(Locale.ROOT, "%.2f", spec.meanAcceptedLength())));
      json.add(toJson(c, s, modeled));
    }
    appendStepTimes(md, summaries);
    appendCosts(md);
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());
    Map<String, Object> root = new LinkedHashMap<>(header);
    root.put("call_costs", costs.calls());
    root.put("rows", json);
    ReportFiles.writeJson(Path.of(out + ".json"), root);
    plot(summaries, Path.of(out + ".png"));
    System.out.print(md);
  }

  private Summary summarize(List<LlmBenchRow> runs) {
    List<LlmBenchRow> plain = rows.get("plain");
    double[] speedups = new double[runs.size()];
    for (int i = 0; i < speedups.length; i++) {
      speedups[i] = runs.get(i).decodeTokensPerSecond() / plain.get(i).decodeTokensPerSecond();
    }
    long steps = 0;
    double step = 0;
    double propose = 0;
    double forward = 0;
    for (LlmBenchRow r : runs) {
      LlmBenchRow.StepTimes t = r.steps();
      if (t != null && t.steps() > 0) {
        steps += t.steps();
        step += t.stepMillis() * t.steps();
        propose += t.proposeMillis() * t.steps();
        forward += t.forwardMillis() * t.steps();
      }
    }
    return new Summary(
        runs.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).average().orElseThrow(),
        runs.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).min().orElseThrow(),
        runs.stream().mapToDouble(LlmBenchRow::decodeTokensPerSecond).max().orElseThrow(),
        speedups,
        runs.stream().mapToDouble(LlmBenchRow::ttftP50Millis).average().orElseThrow(),
        total(runs),
        steps,
        step / steps,
        propose / steps,
        forward / steps);
  }

  /** The speedup the timed calls give a speculating case at its accepted length; NaN otherwise. */
  private double modeled(SpecCase c, Summary s) {
    if (c.speculative() == null || s.speculation() == null) {
      return Double.NaN;
    }
    return costs.speedup(
        c.speculative().numTokens(),
        c.drafts(),
        s.decodeSteps(),
        s.speculation().steps(),
        s.speculation().accepted());
  }

  private void appendStepTimes(StringBuilder md, Map<String, Summary> summaries) {
    md.append(
        "\nWhere a decode step's time went, in ms, the mean over every run's decode steps (the"
            + " engine's own work is the step less the draft's calls and the target's call):\n\n");
    md.append("| decoding | step | drafting | target | engine |\n|---|---:|---:|---:|---:|\n");
    summaries.forEach(
        (name, s) ->
            md.append(
                String.format(
                    Locale.ROOT,
                    "| %s | %.3f | %.3f | %.3f | %.3f |%n",
                    name,
                    s.stepMillis(),
                    s.proposeMillis(),
                    s.forwardMillis(),
                    s.stepMillis() - s.proposeMillis() - s.forwardMillis())));
  }

  private void appendCosts(StringBuilder md) {
    md.append(
        "\nEach runner call of a cycle timed alone after a context of "
            + context
            + " positions (median, the kinds taking turns), through the greedy path where the"
            + " runner has one:\n\n");
    md.append("| call | ms | vs a decode step |\n|---|---:|---:|\n");
    costs
        .calls()
        .forEach(
            (name, millis) ->
                md.append(
                    String.format(
                        Locale.ROOT,
                        "| %s | %.4f | %.2fx |%n",
                        name,
                        millis,
                        millis / costs.decodeMillis())));
  }

  private Map<String, Object> toJson(SpecCase c, Summary s, double modeled) {
    Map<String, Object> j = new LinkedHashMap<>();
    j.put("decoding", c.name());
    j.put("decode_tokens_per_second", s.decode());
    j.put("decode_tokens_per_second_min", s.min());
    j.put("decode_tokens_per_second_max", s.max());
    j.put("speedup_vs_plain", s.speedup());
    j.put("speedup_vs_plain_per_slot", s.speedups());
    j.put("first_token_ms_mean", s.firstTokenMillis());
    j.put("decode_steps", s.decodeSteps());
    j.put("decode_step_ms_mean", finiteOrNull(s.stepMillis()));
    j.put("decode_propose_ms_mean", finiteOrNull(s.proposeMillis()));
    j.put("decode_forward_ms_mean", finiteOrNull(s.forwardMillis()));
    LlmBenchRow.Speculation spec = s.speculation();
    if (spec != null) {
      j.put("spec_tokens", c.speculative().numTokens());
      j.put("spec_steps", spec.steps());
      j.put("spec_proposed", spec.proposed());
      j.put("spec_accepted", spec.accepted());
      j.put("acceptance_rate", finiteOrNull(spec.acceptanceRate()));
      j.put("mean_accepted_length", finiteOrNull(spec.meanAcceptedLength()));
      j.put("modeled_speedup", finiteOrNull(modeled));
    }
    List<Map<String, Object>> runs = new ArrayList<>();
    rows.get(c.name()).forEach(row -> runs.add(row.toJson()));
    j.put("runs", runs);
    return j;
  }

  private void plot(Map<String, Summary> summaries, Path png) {
    List<Integer> draftKs = new ArrayList<>();
    List<SpecPlot.Point> measured = new ArrayList<>();
    for (SpecCase c : cases) {
      if (c.drafts()) {
        draftKs.add(c.speculative().numTokens());
      }
      Summary s = summaries.get(c.name());
      if (s.speculation() != null && Double.isFinite(s.speculation().acceptanceRate())) {
        measured.add(new SpecPlot.Point(c.name(), s.speculation().acceptanceRate(), s.speedup()));
      }
    }
    SpecPlot.save(costs, draftKs, measured, png);
  }

  /** The speculation counts of all runs together; null for a case that does not speculate. */
  private static LlmBenchRow.Speculation total(List<LlmBenchRow> runs) {
    if (runs.get(0).speculation() == null) {
      return null;
    }
    long steps = 0;
    long proposed = 0;
    long accepted = 0;
    for (LlmBenchRow r : runs) {
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
