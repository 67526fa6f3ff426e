package io.kiln.execution.llm;

/**
 * Shape facts the scheduler and the KV pool need.
 *
 * @param eosTokenId the end-of-sequence token, or -1 if the model has none
 */
public record ModelSpec(
    int numLayers, int numKvHeads, int headDim, int vocabSize, int maxPositions, int eosTokenId) {}
