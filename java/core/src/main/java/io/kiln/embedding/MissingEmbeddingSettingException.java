package io.kiln.embedding;

import io.kiln.ModelException;

/**
 * A model does not say how to embed (its pooling, or whether to normalize) and the caller did not
 * say either; Kiln never guesses. {@link #option()} names the command-line option that would.
 */
public final class MissingEmbeddingSettingException extends ModelException {
  private static final long serialVersionUID = 1L;

  private final String option;

  public MissingEmbeddingSettingException(String message, String option) {
    super(message);
    this.option = option;
  }

  /** The option that supplies the missing setting, e.g. {@code --pooling}. */
  public String option() {
    return option;
  }
}
