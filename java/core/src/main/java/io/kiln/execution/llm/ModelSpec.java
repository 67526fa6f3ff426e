package io.kiln.execution.llm;

/**
 * Shape facts the scheduler and the KV pool need.
 *
 * @param eosTokenId the end-of-sequence token, or -1 if the model has none
 */
public record ModelSpec(
    int numLayers, int numKvHeads, int headDim, int vocabSize, int maxPositions, int eosTokenId) {

  /** The spec of a Llama-family model, served up to its full context. */
  public static ModelSpec of(io.kiln.model.llama.LlamaConfig c) {
    return of(c, c.maxPositions());
  }

  /** The spec of a Llama-family model, served up to {@code maxPositions} tokens. */
  public static ModelSpec of(io.kiln.model.llama.LlamaConfig c, int maxPositions) {
    return new ModelSpec(
        c.numLayers(), c.numKvHeads(), c.headDim(), c.vocabSize(), maxPositions, c.eosTokenId());
  }
}
