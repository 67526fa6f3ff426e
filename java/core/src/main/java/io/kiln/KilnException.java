package io.kiln;

/** Base of every error Kiln raises on purpose; each subclass names one kind of problem. */
public class KilnException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public KilnException(String message) {
    super(message);
  }

  public KilnException(String message, Throwable cause) {
    super(message, cause);
  }
}
