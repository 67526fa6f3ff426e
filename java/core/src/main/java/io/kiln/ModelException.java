package io.kiln;

/** A model file is missing, unreadable, corrupt, or uses something Kiln does not support. */
public class ModelException extends KilnException {
  private static final long serialVersionUID = 1L;

  public ModelException(String message) {
    super(message);
  }

  public ModelException(String message, Throwable cause) {
    super(message, cause);
  }
}
