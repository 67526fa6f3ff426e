package io.kiln.execution.llm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Speculation inside the engine step: the scheduler reserves room for each speculating decode,
 * {@link #propose} fills it with proposed tokens, the target scores every position in the same
 * step, and {@link #accept} keeps what the target agrees with. Greedy requests keep the proposals
 * the target's argmax matches, so their output equals plain greedy decoding; sampled requests use
 * rejection sampling, so their output distribution equals the target's. Engine thread only.
 */
final class Speculator implements AutoCloseable {
  private final SpeculativeConfig config;
  private final Proposer proposer;
  private long verifications;
  private long proposed;
  private long accepted;

  Speculator(SpeculativeConfig config, Proposer proposer) {
    this.config = config;
    this.proposer = proposer;
  }

  SpeculativeConfig config() {
    return config;
  }

  /** How many tokens a decode of {@code r} may propose now. */
  int lookahead(LlmRequest r) {
    if (!r.params.speculate()) {
      return 0;
    }
    // Room for the proposals and the target's own token after them.
    return Math.max(0, Math.min(config.numTokens(), r.maxTotalTokens - r.numTokens - 1));
  }

  /**
   * Lets the proposer compute, alongside the target, the prompt chunks (or the recomputation after
   * a preemption) of requests that will speculate: up to the chunk's end, short of the last known
   * token, which the first proposal feeds.
   */
  void prefill(ScheduledStep step) {
    List<LlmRequest> requests = new ArrayList<>();
    List<Integer> ends = new ArrayList<>();
    for (int i = 0; i < step.chunks.size(); i++) {
      SequenceChunk chunk = step.chunks.get(i);
      LlmRequest r = step.requests.get(i);
      if (chunk.startPosition() != r.numTokens - 1 && lookahead(r) > 0) {
        requests.add(r);
        ends.add(Math.min(chunk.startPosition() + chunk.tokens().length, r.numTokens - 1));
      }
    }
    if (!requests.isEmpty()) {
      proposer.prefill(requests, ends.stream().mapToInt(Integer::intValue).toArray());
    }
  }

  /** Turns each reserved decode chunk into a verification chunk: its last token, then proposals. */
  void propose(ScheduledStep step) {
    List<Integer> at = new ArrayList<>();
    List<LlmRequest> requests = new ArrayList<>();
    for (int i = 0; i < step.chunks.size(); i++) {
      if (step.lookaheads.get(i) > 0) {
        at.add(i);
        requests.add(step.requests.get(i));
      }
    }
    if (requests.isEmpty()) {
      return;
    }
    int[] limits = at.stream().mapToInt(step.lookaheads::get).toArray();
    List<Proposal> proposals = proposer.propose(requests, limits);
    for (int j = 0; j < at.size(); j++) {
      Proposal proposal = proposals.get(j);
      if (proposal.size() == 0) {
        continue;
      }
      int i = at.get(j);
      SequenceChunk chunk = step.chunks.get(i);
      int[] tokens = Arrays.copyOf(chunk.tokens(), 1 + proposal.size());
      System.arraycopy(proposal.tokens(), 0, tokens, 1, proposal.size());
      step.chunks.set(
          i,
          new SequenceChunk(
              chunk.requestId(), tokens, chunk.startPosition(), chunk.blockTable(), tokens.length));
      step.proposals.set(i, proposal);
      step.numTokens += proposal.size();
    }
  }

  /**
   * The tokens a verification appends: the accepted proposals, then one token of the target's.
   *
   * @param logits the target's logits of every verified position, end to end (null when {@code
   *     greedyTokens} are given)
   * @param greedyTokens the target's greedy token at every verified position, or null
   */
  int[] accept(LlmRequest r, Proposal proposal, float[] logits, int[] greedyTokens, int vocab) {
    int k = proposal.size();
    int[] history = Arrays.copyOf(r.tokens, r.numTokens + k + 1);
    int[] out = new int[k + 1];
    int kept = 0;
    for (; kept < k; kept++) {
      int length = r.numTokens + kept;
      int token = proposal.tokens()[kept];
      if (greedyTokens != null || r.params.isGreedy()) {
        int best =
            greedyTokens != null
                ? greedyTokens[kept]
                : r.sampler.sample(row(logits, kept, vocab), history, length);
        if (best != token) {
          out[kept] = best;
          return finish(r, proposal, out, kept);
        }
      } else {
        double[] target = r.sampler.distribution(row(logits, kept, vocab), history, length);
        if (r.sampler.uniform() * proposal.probability(kept) >= target[token]) {
          out[kept] = r.sampler.draw(residual(target, proposal, kept));
          return finish(r, proposal, out, kept);
        }
      }
      out[kept] = token;
      history[length] = token;
    }
    int length = r.numTokens + k;
    out[k] =
        greedyTokens != null
            ? greedyTokens[k]
            : r.sampler.sample(row(logits, k, vocab), history, length);
    return finish(r, proposal, out, k);
  }

  /**
   * Where a proposal was rejected, the target's probability mass that the proposal did not cover:
   * norm(max(0, p - q)). Drawing from it keeps the output distributed as p.
   */
  private static double[] residual(double[] target, Proposal proposal, int index) {
    double[] weights = target.clone();
    if (proposal.probabilities() == null) {
      weights[proposal.tokens()[index]] = 0;
    } else {
      double[] q = proposal.probabilities()[index];
      for (int t = 0; t < weights.length; t++) {
        weights[t] = Math.max(0, weights[t] - q[t]);
      }
    }
    double sum = 0;
    for (double w : weights) {
      sum += w;
    }
    // Only rounding leaves nothing (p equal to q, which accepts with certainty): fall back to p.
    return sum > 0 ? weights : target;
  }

  private int[] finish(LlmRequest r, Proposal proposal, int[] out, int kept) {
    verifications++;
    proposed += proposal.size();
    accepted += kept;
    r.speculativeProposed += proposal.size();
    r.speculativeAccepted += kept;
    return Arrays.copyOf(out, kept + 1);
  }

  private static float[] row(float[] logits, int index, int vocab) {
    return Arrays.copyOfRange(logits, index * vocab, (index + 1) * vocab);
  }

  /** After the step appended its tokens: lets the proposer drop what the target rejected. */
  void verified(LlmRequest r, int proposedTokens, int acceptedTokens) {
    proposer.verified(r, proposedTokens, acceptedTokens);
  }

  void release(long requestId) {
    proposer.release(requestId);
  }

  long verifications() {
    return verifications;
  }

  long proposed() {
    return proposed;
  }

  long accepted() {
    return accepted;
  }

  int draftKvBlocksUsed() {
    return proposer.kvBlocksUsed();
  }

  @Override
  public void close() {
    proposer.close();
  }
}
