package io.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln serve}'s command line: bad options fail before anything is opened or bound. */
class ServeCommandTest {
  @TempDir Path dir;

  @Test
  void aPortOutOfRangeIsAUsageError() {
    GenerateCommandTest.Run r =
        GenerateCommandTest.kiln("serve", "--model", dir.toString(), "--port", "70000");
    assertEquals(ExitCodes.USAGE, r.exit(), r.err());
    assertTrue(r.err().contains("--port"), r.err());
    assertTrue(r.out().isEmpty());
  }

  @Test
  void aMissingModelDirectoryIsAModelError() {
    GenerateCommandTest.Run r =
        GenerateCommandTest.kiln(
            "serve", "--model", dir.resolve("absent").toString(), "--port", "0");
    assertEquals(ExitCodes.MODEL, r.exit(), r.err());
    assertTrue(r.out().isEmpty());
  }

  @Test
  void aNegativeQueueIsAUsageError() {
    GenerateCommandTest.Run r =
        GenerateCommandTest.kiln("serve", "--model", dir.toString(), "--max-queue", "-1");
    assertEquals(ExitCodes.USAGE, r.exit(), r.err());
  }
}
