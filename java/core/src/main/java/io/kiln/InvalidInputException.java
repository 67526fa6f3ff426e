package io.kiln;

/**
 * Inputs do not fit the model: an unknown name, a wrong dtype, rank or dimension, batches that
 * disagree, an empty batch, or non-finite values.
 */
public class InvalidInputException extends KilnException {
  private static final long serialVersionUID = 1L;

  public InvalidInputException(String message) {
    super(message);
  }
}
