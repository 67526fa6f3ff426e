package io.kiln.execution.llm;

/**
 * One sequence's work in a step: process {@code tokens} at positions {@code startPosition ..
 * startPosition + tokens.length - 1}, reading earlier positions' K/V from and writing the new
 * positions' K/V into the paged pool through {@code blockTable} (logical block i -> physical block
 * id; the block size comes from {@link KvPoolSpec}).
 */
public record SequenceChunk(
    long requestId, int[] tokens, int startPosition, int[] blockTable, boolean wantLogits) {}
