package io.kiln.spark;

import io.kiln.ErrorLines;
import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/** Turns a bad row into its {@code error} value, or into the job's failure under fail fast. */
final class RowErrors {
  private RowErrors() {}

  /** A row with no results: {@code width} added columns, all null but the error, last. */
  static Object[] failed(int width, String message) {
    Object[] values = new Object[width];
    values[width - 1] = message;
    return values;
  }

  /** The row's error text, or the exception itself when the job must fail. */
  static Object[] failedOrThrow(int width, Throwable error, boolean failFast) {
    Throwable cause = unwrap(error);
    if (failFast) {
      throw cause instanceof KilnException k
          ? k
          : new KilnException(ErrorLines.describe(cause), cause);
    }
    return failed(width, ErrorLines.describe(cause));
  }

  /** A bad input found before any model call. */
  static Object[] invalid(int width, String message, boolean failFast) {
    return failedOrThrow(width, new InvalidInputException(message), failFast);
  }

  static Throwable unwrap(Throwable e) {
    Throwable t = e;
    while ((t instanceof CompletionException || t instanceof ExecutionException)
        && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }
}
