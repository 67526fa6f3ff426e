package io.kiln.execution.llm;

import java.util.List;

/** Where speculated tokens come from. Engine thread only. */
interface Proposer extends AutoCloseable {
  /**
   * Proposes up to {@code limits[i]} tokens to follow each request's known tokens, in order; {@link
   * Proposal#NONE} where it has none.
   */
  List<Proposal> propose(List<LlmRequest> requests, int[] limits);

  /**
   * While the target computes prompt tokens of these requests, in the same step: computes what the
   * proposer will need of each request's first {@code ends[i]} tokens, so that its first proposal
   * does not wait for it. Whatever this leaves out, {@link #propose} still catches up.
   */
  default void prefill(List<LlmRequest> requests, int[] ends) {}

  /**
   * After verification: {@code accepted} of the request's {@code proposed} tokens were kept, and
   * its known tokens now end after them.
   */
  default void verified(LlmRequest request, int proposed, int accepted) {}

  /** Blocks of the proposer's own KV pool that requests hold. */
  default int kvBlocksUsed() {
    return 0;
  }

  /** Forgets a request that finished, was preempted or failed. */
  default void release(long requestId) {}

  @Override
  default void close() {}
}
