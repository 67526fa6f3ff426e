package io.kiln.server;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns one request's tokens into text deltas as they come. A delta never ends inside a UTF-8
 * character (a decode that ends in U+FFFD waits for the next token), and text that may begin a stop
 * string is held back until it cannot; a stop string found across token boundaries ends the text
 * before it, and is never emitted.
 */
final class IncrementalDecoder {
  private static final char REPLACEMENT = '\uFFFD';

  private final TextTokenizer tokenizer;
  private final List<String> stops;
  private final List<Integer> ids = new ArrayList<>();
  private final StringBuilder text = new StringBuilder();
  // Tokens decoded together with the new ones, so that merges at the seam (e.g. a leading space)
  // come out as in a decode of the whole sequence.
  private int prefixOffset;
  private int readOffset;
  private int emitted;
  private boolean stopped;

  IncrementalDecoder(TextTokenizer tokenizer, List<String> stops) {
    this.tokenizer = tokenizer;
    this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
  }

  /** True once a stop string was found: later tokens are ignored. */
  boolean stopped() {
    return stopped;
  }

  /** The text to send after {@code tokenId}; empty while it waits. */
  String push(int tokenId) {
    if (stopped) {
      return "";
    }
    ids.add(tokenId);
    String before = tokenizer.decode(ids, prefixOffset, readOffset);
    String now = tokenizer.decode(ids, prefixOffset, ids.size());
    if (now.length() > before.length()
        && now.charAt(now.length() - 1) != REPLACEMENT
        && now.startsWith(before)) {
      text.append(now, before.length(), now.length());
      prefixOffset = readOffset;
      readOffset = ids.size();
    }
    return release(false);
  }

  /** The text still held back when the request ends. */
  String finish() {
    if (stopped) {
      return "";
    }
    String before = tokenizer.decode(ids, prefixOffset, readOffset);
    String now = tokenizer.decode(ids, prefixOffset, ids.size());
    if (now.length() > before.length() && now.startsWith(before)) {
      text.append(now, before.length(), now.length());
    }
    readOffset = ids.size();
    return release(true);
  }

  /** All text sent so far. */
  String text() {
    return text.substring(0, emitted);
  }

  private String release(boolean end) {
    int from = Math.max(0, emitted - longestStop());
    int stopAt = -1;
    for (String stop : stops) {
      int at = text.indexOf(stop, from);
      if (at >= 0 && (stopAt < 0 || at < stopAt)) {
        stopAt = at;
      }
    }
    int until;
    if (stopAt >= 0) {
      stopped = true;
      until = Math.max(emitted, stopAt);
    } else {
      until = end ? text.length() : text.length() - heldForStop();
    }
    if (until <= emitted) {
      return "";
    }
    String delta = text.substring(emitted, until);
    emitted = until;
    return delta;
  }

  /** Length of the longest tail of the text that some stop string starts with. */
  private int heldForStop() {
    int held = 0;
    for (String stop : stops) {
      for (int k = Math.min(stop.length() - 1, text.length() - emitted); k > held; k--) {
        if (stop.startsWith(text.substring(text.length() - k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }

  private int longestStop() {
    int longest = 0;
    for (String stop : stops) {
      longest = Math.max(longest, stop.length());
    }
    return longest;
  }
}
