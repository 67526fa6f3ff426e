package io.kiln.embedding;

import io.kiln.InvalidInputException;

/**
 * How to embed, where the caller overrides the model's own files. Null (or 0) means "as the model
 * says"; a model that does not say its pooling or normalization needs them given here.
 *
 * @param pooling the pooling mode, or null for the model's
 * @param normalize whether to scale to unit length, or null for the model's
 * @param prompt text put before every input, or null
 * @param promptName a prompt named in config_sentence_transformers.json (e.g. query), or null
 * @param dimensions keep only the first N dimensions (Matryoshka), 0 for all
 * @param batchSize the most texts in one run, or 0 for the session's preferred batch size (its
 *     backend's measured best, within its maximum batch)
 */
public record EmbeddingOptions(
    Pooling pooling,
    Boolean normalize,
    String prompt,
    String promptName,
    int dimensions,
    int batchSize) {
  /** Tokens of one run beyond which a batch of long texts is split (bounds attention memory). */
  static final int TOKENS_PER_RUN = 16_384;

  public EmbeddingOptions {
    if (dimensions < 0) {
      throw new InvalidInputException("dimensions must be >= 0 (0 keeps all), got " + dimensions);
    }
    if (batchSize < 0) {
      throw new InvalidInputException(
          "batchSize must be >= 0 (0: the session's choice), got " + batchSize);
    }
    if (prompt != null && promptName != null) {
      throw new InvalidInputException("give a prompt or a prompt name, not both");
    }
  }

  /** Everything as the model says, runs as large as the session prefers. */
  public static EmbeddingOptions defaults() {
    return new EmbeddingOptions(null, null, null, null, 0, 0);
  }

  public EmbeddingOptions withPooling(Pooling p) {
    return new EmbeddingOptions(p, normalize, prompt, promptName, dimensions, batchSize);
  }

  public EmbeddingOptions withNormalize(Boolean on) {
    return new EmbeddingOptions(pooling, on, prompt, promptName, dimensions, batchSize);
  }

  public EmbeddingOptions withPrompt(String text) {
    return new EmbeddingOptions(pooling, normalize, text, promptName, dimensions, batchSize);
  }

  public EmbeddingOptions withPromptName(String name) {
    return new EmbeddingOptions(pooling, normalize, prompt, name, dimensions, batchSize);
  }

  public EmbeddingOptions withDimensions(int n) {
    return new EmbeddingOptions(pooling, normalize, prompt, promptName, n, batchSize);
  }

  public EmbeddingOptions withBatchSize(int n) {
    return new EmbeddingOptions(pooling, normalize, prompt, promptName, dimensions, n);
  }
}
