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
    ProgressBar bar = new ProgressBar(out, 4);
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
    ProgressBar bar = ProgressBar.unbounded(out);
    bar.show("first");
    bar.show("second");
    assertEquals(2, text().chars().filter(c -> c == '\r').count());
    assertTrue(text().endsWith("second"), text());
    assertThrows(IllegalStateException.class, () -> bar.step("x"));
  }

  @Test
  void calibrationProgressDrawsThroughTheBar() {
    Progress p = Progress.to(out);
    p.update("histogram", 3, 24);
    assertTrue(text().startsWith("\r"), text());
    assertTrue(text().matches("(?s).*calibration histogram +batch +3 +samples +24$"), text());
  }
}
