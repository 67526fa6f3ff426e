package io.kiln.bench;

import java.util.Map;

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

  public SpecCostModel {
    verifyMillis = Map.copyOf(verifyMillis);
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
