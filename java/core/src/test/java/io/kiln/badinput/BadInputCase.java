package io.kiln.badinput;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import io.kiln.KilnException;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.function.Executable;

/**
 * One case of the library's bad-input suite: the call must raise {@code type} with a one-line
 * message that contains {@code fragment}.
 */
public record BadInputCase(
    String name, Class<? extends KilnException> type, String fragment, Executable call) {

  /** A dynamic test per case. */
  public static Stream<DynamicTest> tests(List<BadInputCase> cases) {
    return cases.stream().map(c -> dynamicTest(c.name(), c::check));
  }

  void check() {
    KilnException e = assertThrows(type, call, name);
    String message = e.getMessage();
    assertTrue(message != null && !message.isBlank(), name + ": no message");
    assertTrue(!message.contains("\n"), name + ": not one line: " + message);
    assertTrue(message.contains(fragment), name + ": '" + message + "' lacks '" + fragment + "'");
  }
}
