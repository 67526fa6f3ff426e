package io.kiln.execution.llm;

/**
 * The paged KV pool a runner owns: {@code numBlocks} blocks of {@code blockSize} positions each.
 * Block 0 is the reserved null block: never written for real tokens, padding may point at it.
 */
public record KvPoolSpec(int numBlocks, int blockSize) {}
