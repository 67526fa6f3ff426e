package io.kiln.execution.llm;

/**
 * Tokens proposed for one request's next positions.
 *
 * @param probabilities the distribution each token was drawn from (vocabulary-wide), or null when
 *     the proposal is deterministic (a point mass on each token)
 */
record Proposal(int[] tokens, double[][] probabilities) {
  static final Proposal NONE = new Proposal(new int[0], null);

  int size() {
    return tokens.length;
  }

  /** The proposal's probability of its token {@code index}. */
  double probability(int index) {
    return probabilities == null ? 1 : probabilities[index][tokens[index]];
  }
}
