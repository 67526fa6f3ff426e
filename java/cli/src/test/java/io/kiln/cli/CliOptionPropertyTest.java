package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Random numeric option values never crash the command line and never pass unnoticed: a value out
 * of range is a usage error (exit 2), and values in range reach the next check (here, a missing
 * model: exit 3).
 */
class CliOptionPropertyTest {
  @Provide
  Arbitrary<String> numbers() {
    return Arbitraries.oneOf(
        Arbitraries.integers().between(-5, 5000).map(String::valueOf),
        Arbitraries.longs().map(String::valueOf),
        Arbitraries.of("0", "-1", "2147483647", "2147483648", "99999999999999999999", "1e3", "x"));
  }

  @Property(tries = 120)
  void benchOptions(
      @ForAll("numbers") String seq,
      @ForAll("numbers") String threads,
      @ForAll("numbers") String iterations,
      @ForAll("numbers") String batch) {
    CliTest.Outcome o =
        CliTest.kiln(
            "bench",
            "/nonexistent/model.onnx",
            "--seq",
            seq,
            "--threads",
            threads,
            "--iterations",
            iterations,
            "--batch",
            batch,
            "--no-peer");
    boolean inRange =
        within(seq, 1, 1 << 20)
            && within(threads, 1, 4096)
            && within(iterations, 1, 10_000_000)
            && within(batch, 1, 1 << 16)
            && Long.parseLong(batch) * Long.parseLong(seq) <= 1L << 24;
    assertEquals(inRange ? ExitCodes.MODEL : ExitCodes.USAGE, o.exit(), o.err());
    List<String> lines = o.err().lines().filter(l -> !l.isBlank()).toList();
    assertTrue(lines.size() <= 2 && lines.get(0).startsWith("kiln: "), o.err());
    assertTrue(o.out().isBlank(), o.out());
  }

  @Property(tries = 80)
  void generateOptions(
      @ForAll("numbers") String maxNewTokens,
      @ForAll("numbers") String blockSize,
      @ForAll("numbers") String topK) {
    CliTest.Outcome o =
        CliTest.kiln(
            "generate",
            "--model",
            "/nonexistent/llama",
            "--prompt-ids",
            "1,2",
            "--max-new-tokens",
            maxNewTokens,
            "--block-size",
            blockSize,
            "--top-k",
            topK);
    boolean inRange =
        within(maxNewTokens, 1, 1 << 24) && within(blockSize, 1, 1024) && within(topK, 0, 1 << 24);
    assertEquals(inRange ? ExitCodes.MODEL : ExitCodes.USAGE, o.exit(), o.err());
    assertTrue(o.err().lines().filter(l -> !l.isBlank()).count() <= 2, o.err());
  }

  /** Whether {@code text} is an int in [min, max]. */
  private static boolean within(String text, long min, long max) {
    try {
      int v = Integer.parseInt(text);
      return v >= min && v <= max;
    } catch (NumberFormatException e) {
      return false;
    }
  }
}
