package io.kiln.execution.llm;

import java.util.ArrayList;
import java.util.List;

/**
 * What one engine step runs: one chunk per scheduled request, in the same order, with the room
 * reserved for speculation (lookahead) and what was proposed into it.
 */
final class ScheduledStep {
  final List<LlmRequest> requests = new ArrayList<>();
  final List<SequenceChunk> chunks = new ArrayList<>();
  final List<Integer> lookaheads = new ArrayList<>();
  final List<Proposal> proposals = new ArrayList<>();
  int numTokens;

  boolean isEmpty() {
    return chunks.isEmpty();
  }

  /** Schedules {@code chunk} of {@code request}, with {@code lookahead} slots to propose into. */
  void add(LlmRequest request, SequenceChunk chunk, int lookahead, Proposal proposal) {
    requests.add(request);
    chunks.add(chunk);
    lookaheads.add(lookahead);
    proposals.add(proposal);
    numTokens += chunk.tokens().length;
  }

  /** Entry {@code i} of {@code other}, added to this step as it is. */
  void addFrom(ScheduledStep other, int i) {
    add(
        other.requests.get(i),
        other.chunks.get(i),
        other.lookaheads.get(i),
        other.proposals.get(i));
  }
}
