package io.kiln.execution.llm;

/**
 * One sequence's work in a step: process {@code tokens} at positions {@code startPosition ..
 * startPosition + tokens.length - 1}, reading earlier positions' K/V from and writing the new
 * positions' K/V into the paged pool through {@code blockTable} (logical block i -> physical block
 * id; the block size comes from {@link KvPoolSpec}).
 *
 * @param numLogits how many of the chunk's last positions need logits: 0 (a prefill chunk that does
 *     not end the known tokens), 1 (the next token), or more (verifying speculated tokens)
 */
public record SequenceChunk(
    long requestId, int[] tokens, int startPosition, int[] blockTable, int numLogits) {

  public SequenceChunk {
    if (tokens != null && (numLogits < 0 || numLogits > tokens.length)) {
      throw new IllegalArgumentException(
          "numLogits " + numLogits + " outside [0, " + tokens.length + "]");
    }
  }

  /** A chunk that wants the logits of its last position, or none. */
  public SequenceChunk(
      long requestId, int[] tokens, int startPosition, int[] blockTable, boolean wantLogits) {
    this(requestId, tokens, startPosition, blockTable, wantLogits ? 1 : 0);
  }

  public boolean wantLogits() {
    return numLogits > 0;
  }
}
