package io.kiln.bench;

import io.kiln.InvalidInputException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The runner calls of a greedy speculation cycle, each timed alone, and the speedup over plain
 * decoding that those costs allow. A draft cycle at K is one target verification of K + 1
 * positions, a first draft round and K - 1 later rounds of one position. The first round feeds two
 * positions after a fully accepted proposal (the last proposed token and the target's) and one
 * otherwise. n-gram lookup costs the verification alone.
 *
 * @param decodeMillis a plain decode step of the target (one position)
 * @param verifyMillis K -> the target's verification of K + 1 positions, on the runner opened for K
 * @param draftRoundMillis a draft round of one position
 * @param draftFirstRoundMillis a draft round of two positions, one of them wanting a token
 */
public record SpecCostModel(
    double decodeMillis,
    Map<Integer, Double> verifyMillis,
    double draftRoundMillis,
    double draftFirstRoundMillis) {

  /** The calls as reports name them ({@link #calls}, SpecCycleBench's table). */
  public static final String DECODE_CALL = "target decode (1 position)";

  public static final String DRAFT_FIRST_ROUND_CALL = "draft first round (2 positions, 1 token)";
  public static final String DRAFT_ROUND_CALL = "draft round (1 position)";

  private static final Pattern VERIFICATION_CALL =
      Pattern.compile("target verification \\((\\d+) positions\\)");

  public SpecCostModel {
    verifyMillis = Map.copyOf(verifyMillis);
  }

  /** The name of the target's verification of {@code k} proposals (K + 1 positions). */
  public static String verificationCall(int k) {
    return "target verification (" + (k + 1) + " positions)";
  }

  /** Each call's ms by its name: the decode step, each K's verification, the draft's rounds. */
  public Map<String, Double> calls() {
    Map<String, Double> calls = new LinkedHashMap<>();
    calls.put(DECODE_CALL, decodeMillis);
    verifyMillis.keySet().stream()
        .sorted()
        .forEach(k -> calls.put(verificationCall(k), verifyMillis.get(k)));
    calls.put(DRAFT_FIRST_ROUND_CALL, draftFirstRoundMillis);
    calls.put(DRAFT_ROUND_CALL, draftRoundMillis);
    return calls;
  }

  /**
   * The model whose {@link #calls} these are (a report's {@code call_costs}).
   *
   * @throws InvalidInputException when a call is missing
   */
  public static SpecCostModel fromCalls(Map<String, Double> calls) {
    Map<Integer, Double> verify = new HashMap<>();
    calls.forEach(
        (name, millis) -> {
          Matcher m = VERIFICATION_CALL.matcher(name);
          if (m.matches()) {
            verify.put(Integer.parseInt(m.group(1)) - 1, millis);
          }
        });
    return new SpecCostModel(
        call(calls, DECODE_CALL),
        verify,
        call(calls, DRAFT_ROUND_CALL),
        call(calls, DRAFT_FIRST_ROUND_CALL));
  }

  private static double call(Map<String, Double> calls, String name) {
    Double millis = calls.get(name);
    if (millis == null) {
      throw new InvalidInputException("no \"" + name + "\" among the calls");
    }
    return millis;
  }

  /** A draft cycle at K when a share {@code fullyAccepted} of the cycles accepted everything. */
  public double draftCycleMillis(int k, double fullyAccepted) {
    return verify(k)
        + fullyAccepted * draftFirstRoundMillis
        + (1 - fullyAccepted) * draftRoundMillis
        + (k - 1) * draftRoundMillis;
  }

  /**
   * The speedup of a run of {@code steps} decode steps, {@code verifications} of which verified a
   * proposal and kept {@code accepted} of its tokens: the tokens they yield over their cost. A step
   * without a proposal costs a decode step. A verification costs K + 1 positions, what a CUDA
   * verification graph computes however short the proposal; on the CPU a shorter proposal costs
   * less, so there n-gram lookup, whose proposals are often short, is modeled on the slow side. A
   * draft's verification adds its rounds, the first of two positions.
   */
  public double speedup(int k, boolean drafts, long steps, long verifications, long accepted) {
    double verification = drafts ? draftCycleMillis(k, 1) : verify(k);
    double millis = (steps - verifications) * decodeMillis + verifications * verification;
    return (steps + accepted) * decodeMillis / millis;
  }

  /**
   * One point of draft speculation at K where each proposal is kept with probability {@code keep},
   * given that the ones before it were: {acceptance rate (kept over proposed), speedup}.
   */
  public double[] draftCurvePoint(int k, double keep) {
    double allKept = Math.pow(keep, k);
    // Expected proposals kept: keep + keep^2 + ... + keep^K.
    double kept = 0;
    double power = 1;
    for (int i = 1; i <= k; i++) {
      power *= keep;
      kept += power;
    }
    double tokens = kept + 1;
    return new double[] {kept / k, tokens * decodeMillis / draftCycleMillis(k, allKept)};
  }

  private double verify(int k) {
    Double millis = verifyMillis.get(k);
    if (millis == null) {
      throw new IllegalArgumentException("no verification timed for K=" + k);
    }
    return millis;
  }
}
