package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.model.llama.PublicLlama;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The engine's token-only path ({@link ModelRunner#forwardGreedy}) for all-greedy steps. */
@Timeout(120)
class GreedyPathTest {
  @Test
  void greedyRequestsTakeTheTokenPathAndSampledOnesTheLogitPath() throws Exception {
    List<PublicLlama.Case> cases = PublicLlama.cases();
    try (CountingRunner runner = new CountingRunner(PublicLlamaEngines.runner(4 * 12));
        LlmEngine engine = new LlmEngine(runner, new SchedulerConfig(8, 64, 0, false))) {
      List<GenerationHandle> handles = new ArrayList<>();
      for (PublicLlama.Case c : cases) {
        handles.add(engine.submit(c.prompt(), SamplingParams.greedy(48), e -> {}));
      }
      for (int i = 0; i < cases.size(); i++) {
        assertArrayEquals(
            cases.get(i).greedyNewTokens(),
            handles.get(i).result().get(60, TimeUnit.SECONDS).newTokenIds(),
            "case " + i);
      }
      assertEquals(0, runner.logitSteps);
      assertTrue(runner.greedySteps > 48);
      engine.generate(
          cases.get(0).prompt(),
          SamplingParams.builder().temperature(0.8).seed(3).maxNewTokens(4).build());
      assertTrue(runner.logitSteps > 0);
    }
  }
}
