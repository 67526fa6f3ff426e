package io.kiln.bench;

import io.kiln.execution.llm.SpeculativeConfig;

/**
 * One way of decoding in {@link SpecBench}: plain ({@code speculative} null) or speculating, on the
 * target unless {@code draftAlone} (the draft model decoding plainly, for its own speed).
 */
record SpecCase(String name, SpeculativeConfig speculative, boolean draftAlone) {
  boolean drafts() {
    return speculative != null && speculative.method() == SpeculativeConfig.Method.DRAFT;
  }
}
