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
}
