package io.kiln.model;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import java.io.IOException;

/** Jackson's errors in one line: what is wrong and where, without its source excerpt. */
public final class JsonProblems {
  private JsonProblems() {}

  public static String oneLine(IOException e) {
    if (e instanceof JsonProcessingException json) {
      JsonLocation at = json.getLocation();
      String what = String.valueOf(json.getOriginalMessage()).lines().findFirst().orElse("");
      return (at != null ? "line " + at.getLineNr() + ", column " + at.getColumnNr() + ": " : "")
          + what;
    }
    return String.valueOf(e.getMessage()).lines().findFirst().orElse(e.toString());
  }
}
