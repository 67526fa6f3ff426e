package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.model.llama.LlamaWeights;
import io.kiln.model.llama.PublicLlama;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The engine's token-only path ({@link ModelRunner#forwardGreedy}) for all-greedy steps. */
@Timeout(120)
class GreedyPathTest {
  /** The CPU runner, with a greedy path that reports how often each path ran. */
  private static final class CountingRunner implements ModelRunner {
    final CpuLlamaRunner inner;
    int logitSteps;
    int greedySteps;

    CountingRunner(CpuLlamaRunner inner) {
      this.inner = inner;
    }

    @Override
    public ModelSpec spec() {
      return inner.spec();
    }

    @Override
    public KvPoolSpec kvPool() {
      return inner.kvPool();
    }

    @Override
    public float[][] forward(List<SequenceChunk> batch) {
      logitSteps++;
      return inner.forward(batch);
    }

    @Override
    public int[][] forwardGreedy(List<SequenceChunk> batch) {
      greedySteps++;
      float[][] logits = inner.forward(batch);
      int vocab = inner.spec().vocabSize();
      int[][] tokens = new int[batch.size()][];
      for (int i = 0; i < tokens.length; i++) {
        tokens[i] = new int[batch.get(i).numLogits()];
        for (int row = 0; row < tokens[i].length; row++) {
          tokens[i][row] =
              GreedyLoop.argmax(
                  java.util.Arrays.copyOfRange(logits[i], row * vocab, (row + 1) * vocab));
        }
      }
      return tokens;
    }

    @Override
    public void close() {
      inner.close();
    }
  }

  @Test
  void greedyRequestsTakeTheTokenPathAndSampledOnesTheLogitPath() throws Exception {
    List<PublicLlama.Case> cases = PublicLlama.cases();
    LlamaWeights weights = LlamaWeights.load(PublicLlama.directory());
    try (CountingRunner runner =
            new CountingRunner(
                new CpuLlamaRunner(weights, KvPoolSpec.ofUsableBlocks(4 * 12, 16), 2));
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
