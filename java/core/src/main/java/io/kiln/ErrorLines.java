package io.kiln;

/** Kiln's errors as the one line {@code kiln} prints for each. */
public final class ErrorLines {
  private ErrorLines() {}

  /**
   * One line led by the kind of problem: {@code invalid input: ...}, {@code model error: ...},
   * {@code backend error: ...}, {@code error: ...}, else the exception's own class name.
   */
  public static String describe(Throwable e) {
    String kind =
        e instanceof InvalidInputException
            ? "invalid input"
            : e instanceof ModelException
                ? "model error"
                : e instanceof BackendException
                    ? "backend error"
                    : e instanceof KilnException ? "error" : e.getClass().getSimpleName();
    return kind + ": " + e.getMessage();
  }
}
