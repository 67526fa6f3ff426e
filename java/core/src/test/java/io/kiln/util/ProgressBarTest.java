package io.kiln.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.precision.Progress;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressBarTest {
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

  private String text() {
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void barFillsAndEndsTheLineAfterTheLastStep() {
    ProgressBar bar = new ProgressBar(out, 4, true);
    bar.step("a");
    assertTrue(text().contains("[" + "#".repeat(7) + " ".repeat(23) + "]  25%"), text());
    assertTrue(!text().endsWith(System.lineSeparator()));
    bar.step("b");
    bar.step("c");
    bar.step("last");
    assertTrue(text().contains("[" + "#".repeat(30) + "] 100%"), text());
    assertTrue(text().contains("last"));
    assertTrue(text().endsWith(System.lineSeparator()));
  }

  @Test
  void unboundedDisplayRedrawsTheLabelInPlace() {
    ProgressBar bar = ProgressBar.unbounded(out, true);
    bar.show("first");
    bar.show("second");
    assertEquals(2, text().chars().filter(c -> c == '\r').count());
    assertTrue(text().endsWith("second"), text());
    assertThrows(IllegalStateException.class, () -> bar.step("x"));
  }

  @Test
  void calibrationProgressDrawsThroughTheBar() {
    Progress p = Progress.to(ProgressBar.unbounded(out, true));
    p.update("histogram", 3, 24);
    assertTrue(text().startsWith("\r"), text());
    assertTrue(text().matches("(?s).*calibration histogram +batch +3 +samples +24$"), text());
  }

  @Test
  void withoutATerminalLinesComeEveryFewSecondsNeverCarriageReturns() {
    ProgressBar bar = new ProgressBar(out, 1000, false);
    for (int i = 0; i < 1000; i++) {
      bar.step("item " + i);
    }
    String text = text();
    assertTrue(!text.contains("\r"), text);
    long lines = text.lines().count();
    assertTrue(lines >= 1 && lines <= 3, lines + " lines: " + text);
    assertTrue(text.strip().endsWith("100%  item 999"), text);
  }

  @Test
  void withoutATerminalTheLastLabelIsWrittenAtTheEnd() {
    ProgressBar bar = ProgressBar.unbounded(out, false);
    for (int i = 0; i < 500; i++) {
      bar.show("batch " + i);
    }
    bar.finish();
    assertTrue(!text().contains("\r"), text());
    assertTrue(text().strip().endsWith("batch 499"), text());
    assertTrue(text().lines().count() <= 2, text());
  }
}
