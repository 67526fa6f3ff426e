package io.kiln;

/**
 * A call reached a session, engine or runner that is closed or closing. Calls already inside when
 * close began finish normally, or fail with this when close had to cut them short.
 */
public class ClosedException extends KilnException {
  private static final long serialVersionUID = 1L;

  public ClosedException(String message) {
    super(message);
  }
}
