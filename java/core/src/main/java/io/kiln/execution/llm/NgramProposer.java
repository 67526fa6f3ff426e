package io.kiln.execution.llm;

import java.util.ArrayList;
import java.util.List;

/**
 * Prompt lookup: finds the latest earlier occurrence of the request's last n tokens (n from {@code
 * maxN} down to {@code minN}) in its prompt and output so far, and proposes what followed it. Needs
 * no model, and wins where the output repeats its input (editing, summarizing, quoting).
 */
final class NgramProposer implements Proposer {
  private final int minN;
  private final int maxN;

  NgramProposer(int minN, int maxN) {
    this.minN = minN;
    this.maxN = maxN;
  }

  @Override
  public List<Proposal> propose(List<LlmRequest> requests, int[] limits) {
    List<Proposal> proposals = new ArrayList<>(requests.size());
    for (int i = 0; i < requests.size(); i++) {
      LlmRequest r = requests.get(i);
      proposals.add(lookup(r.tokens, r.numTokens, limits[i]));
    }
    return proposals;
  }

  /** The proposal for {@code tokens[0, length)}, at most {@code limit} tokens. */
  Proposal lookup(int[] tokens, int length, int limit) {
    if (limit <= 0) {
      return Proposal.NONE;
    }
    for (int n = Math.min(maxN, length - 1); n >= minN; n--) {
      int suffix = length - n;
      // Latest start first; any start before the suffix leaves a token after the match.
      for (int start = suffix - 1; start >= 0; start--) {
        if (matches(tokens, start, suffix, n)) {
          int from = start + n;
          int count = Math.min(limit, length - from);
          int[] proposed = new int[count];
          System.arraycopy(tokens, from, proposed, 0, count);
          return new Proposal(proposed, null);
        }
      }
    }
    return Proposal.NONE;
  }

  private static boolean matches(int[] tokens, int start, int suffix, int n) {
    for (int j = 0; j < n; j++) {
      if (tokens[start + j] != tokens[suffix + j]) {
        return false;
      }
    }
    return true;
  }
}
