package io.kiln.execution.llm;

import io.kiln.model.llama.LlamaWeights;
import io.kiln.model.llama.PublicLlama;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The public tiny Llama on the CPU runner, for engine tests against Hugging Face's greedy tokens.
 */
final class PublicLlamaEngines {
  static final int BLOCK = 16;
  private static LlamaWeights weights; // read once per test JVM, shared read-only

  private PublicLlamaEngines() {}

  /** A 2-thread CPU runner over a pool of {@code usableBlocks} blocks of {@link #BLOCK}. */
  static synchronized CpuLlamaRunner runner(int usableBlocks) {
    if (weights == null) {
      weights = LlamaWeights.load(PublicLlama.directory());
    }
    return new CpuLlamaRunner(weights, KvPoolSpec.ofUsableBlocks(usableBlocks, BLOCK), 2);
  }

  /** Every case submitted at once, greedy for {@code newTokens}; the results in case order. */
  static List<GenerationResult> greedyTogether(
      LlmEngine engine, List<PublicLlama.Case> cases, int newTokens) throws Exception {
    List<GenerationHandle> handles = new ArrayList<>();
    for (PublicLlama.Case c : cases) {
      handles.add(engine.submit(c.prompt(), SamplingParams.greedy(newTokens), e -> {}));
    }
    List<GenerationResult> results = new ArrayList<>();
    for (GenerationHandle h : handles) {
      results.add(h.result().get(60, TimeUnit.SECONDS));
    }
    return results;
  }
}
