package io.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EventCounterTest {
  @Test
  void countsTokenIdsAcrossChunksThatSplitEvents() {
    ServeBenchmark.EventCounter counter = new ServeBenchmark.EventCounter(System.nanoTime());
    String stream =
        "data: {\"id\":\"c\",\"choices\":[{\"text\":\"\",\"token_ids\":[]}]}\n\n"
            + "data: {\"id\":\"c\",\"choices\":[{\"text\":\"a\",\"token_ids\":[17]}]}\n\n"
            + "data: {\"id\":\"c\",\"choices\":[{\"text\":\"bc\",\"token_ids\":[5,300]}]}\n\n"
            + ": a comment\n\n"
            + "data: {\"id\":\"c\",\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n"
            + "data: [DONE]\n\n";
    // Chunks of 7 bytes cut events, names and numbers anywhere.
    for (int i = 0; i < stream.length(); i += 7) {
      counter.accept(stream.substring(i, Math.min(stream.length(), i + 7)));
    }
    ServeBenchmark.Timing timing = counter.timing();
    assertEquals(3, timing.tokens());
    assertTrue(timing.ttftMillis() >= 0);
    assertEquals(2, timing.itlMillis().length, "the first token has a TTFT, not a gap");
  }
}
