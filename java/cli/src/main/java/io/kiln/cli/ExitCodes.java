package io.kiln.cli;

/** The exit codes of kiln, which scripts can rely on. */
public final class ExitCodes {
  public static final int OK = 0;
  public static final int FAILURE = 1;
  public static final int USAGE = 2;
  public static final int MODEL = 3;
  public static final int INPUT = 4;
  public static final int BACKEND = 5;

  private ExitCodes() {}
}
