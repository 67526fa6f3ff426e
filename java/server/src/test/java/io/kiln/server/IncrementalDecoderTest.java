package io.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Text deltas from the tiny model's byte-level tokenizer, one token at a time. */
class IncrementalDecoderTest {
  private static final String TEXT = "héllo wörld, 日本語 and 🙂 done";
  private static TextTokenizer tokenizer;

  @BeforeAll
  static void load() {
    tokenizer = TextTokenizer.openOrNull(TestServers.chatModel());
  }

  @AfterAll
  static void close() {
    if (tokenizer != null) {
      tokenizer.close();
    }
  }

  private static List<String> deltas(IncrementalDecoder decoder, int[] ids) {
    List<String> out = new ArrayList<>();
    for (int id : ids) {
      out.add(decoder.push(id));
    }
    out.add(decoder.finish());
    return out;
  }

  @Test
  void deltasNeverSplitACharacterAndJoinToTheText() {
    int[] ids = tokenizer.encode(TEXT, false);
    assertTrue(ids.length > TEXT.codePointCount(0, TEXT.length()) / 2, "too few tokens");
    List<String> deltas = deltas(new IncrementalDecoder(tokenizer, List.of()), ids);
    for (String delta : deltas) {
      assertFalse(delta.contains("\uFFFD"), "a delta split a character: " + deltas);
      assertFalse(
          !delta.isEmpty() && Character.isLowSurrogate(delta.charAt(0)),
          "a delta starts inside a surrogate pair: " + deltas);
    }
    assertTrue(deltas.stream().filter(String::isEmpty).count() > 0, "no token waited");
    assertEquals(TEXT, String.join("", deltas));
  }

  @Test
  void aStopStringAcrossTokensEndsTheTextBeforeIt() {
    int[] ids = tokenizer.encode(TEXT, false);
    IncrementalDecoder decoder = new IncrementalDecoder(tokenizer, List.of("日本", "zzz"));
    String joined = String.join("", deltas(decoder, ids));
    assertTrue(decoder.stopped());
    assertEquals("héllo wörld, ", joined);
    assertEquals(joined, decoder.text());
  }

  @Test
  void aPartialStopStringAtTheEndIsReleased() {
    int[] ids = tokenizer.encode("the end", false);
    IncrementalDecoder decoder = new IncrementalDecoder(tokenizer, List.of("end of story"));
    assertEquals("the end", String.join("", deltas(decoder, ids)));
    assertFalse(decoder.stopped());
  }
}
