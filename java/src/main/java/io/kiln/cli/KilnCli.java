package io.kiln.cli;

/** Entry point of the {@code kiln} command line. */
public final class KilnCli {
  private KilnCli() {}

  public static void main(String[] args) {
    System.out.println("kiln");
  }
}
