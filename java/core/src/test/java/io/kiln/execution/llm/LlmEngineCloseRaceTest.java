package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link LlmEngine#close()} while 8 threads stream requests: every stream either ends with the
 * reference tokens or throws a typed exception (cancelled by the close, or refused as closed), the
 * engine thread ends, and no block is left in use.
 */
class LlmEngineCloseRaceTest {
  private static final int VOCAB = 97;
  private static final int THREADS = 8;
  private static final int ROUNDS = 100;

  @Test
  void closeWhileStreamsAreInFlight() throws Exception {
    CloseRaceStreams streams = new CloseRaceStreams();
    for (int round = 0; round < ROUNDS; round++) {
      ToyModelRunner runner = new ToyModelRunner(VOCAB, 256, 200, 4, -1);
      LlmEngine engine = new LlmEngine(runner, SchedulerConfig.defaults());
      List<int[]> prompts = new ArrayList<>();
      List<int[]> expected = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        int[] prompt = {1 + t, 2 + round % 50, 3};
        prompts.add(prompt);
        expected.add(ToyModelRunner.reference(prompt, 6, VOCAB, -1));
      }
      streams.round(engine, prompts, expected, 3, engine::close, round);
      engine.close(); // a second close is harmless
      runner.close();
    }
    assertEquals(THREADS * ROUNDS, streams.cut.get(), "every caller ends on the close");
    assertTrue(
        streams.finished.get() > 0, "no stream finished before close in " + ROUNDS + " rounds");
  }
}
