package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.InvalidInputException;
import io.kiln.model.llama.LlamaWeights;
import io.kiln.model.llama.PublicLlama;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class CpuLlamaRunnerTest {
  private static final int BLOCK = 16;
  private static final int BLOCKS_PER_SEQUENCE =
      12; // 192 positions: the longest prompt + 48 + slack
  private static CpuLlamaRunner runner;
  private static List<PublicLlama.Case> cases;

  @BeforeAll
  static void load() {
    cases = PublicLlama.cases();
    runner =
        new CpuLlamaRunner(
            LlamaWeights.load(PublicLlama.directory()),
            KvPoolSpec.ofUsableBlocks(8 * BLOCKS_PER_SEQUENCE, BLOCK),
            2);
  }

  @AfterAll
  static void close() {
    if (runner != null) {
      runner.close();
    }
  }

  private static float maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  @Test
  void greedyTokensAndLogitsMatchHuggingFace() {
    for (int i = 0; i < cases.size(); i++) {
      PublicLlama.Case c = cases.get(i);
      GreedyLoop.Result r =
          GreedyLoop.run(runner, c.prompt(), c.greedyNewTokens().length, Integer.MAX_VALUE, 1);
      float err = maxAbsDiff(c.lastLogits(), r.promptLogits());
      assertTrue(err <= 1e-3f, "case " + i + ": last_logits max abs error " + err);
      assertArrayEquals(c.greedyNewTokens(), r.tokens(), "case " + i + " greedy tokens");
    }
  }

  @Test
  void chunkedPrefillGivesTheSameLogits() {
    PublicLlama.Case c = cases.get(3); // 100 tokens
    float[] whole = GreedyLoop.run(runner, c.prompt(), 4, Integer.MAX_VALUE, 1).promptLogits();
    for (int chunk : new int[] {1, 7, 16, 37}) {
      GreedyLoop.Result r = GreedyLoop.run(runner, c.prompt(), 4, chunk, 1 + BLOCKS_PER_SEQUENCE);
      assertTrue(maxAbsDiff(whole, r.promptLogits()) <= 1e-5f, "chunk " + chunk);
      float err = maxAbsDiff(c.lastLogits(), r.promptLogits());
      assertTrue(err <= 1e-3f, "chunk " + chunk + ": error " + err);
    }
  }

  @Test
  void batchOfSequencesEqualsOneAtATime() {
    List<float[]> alone = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      alone.add(
          GreedyLoop.run(runner, cases.get(i).prompt(), 1, Integer.MAX_VALUE, 1).promptLogits());
    }
    // All four prompts in one step, each in its own blocks, with one chunk that wants no logits.
    List<SequenceChunk> step = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      int[] prompt = cases.get(i).prompt();
      step.add(
          new SequenceChunk(
              i,
              prompt,
              0,
              GreedyLoop.blocks(1 + i * BLOCKS_PER_SEQUENCE, prompt.length + 1, BLOCK),
              true));
    }
    int[] other = {5, 6, 7, 8, 9};
    step.add(
        new SequenceChunk(
            99, other, 0, GreedyLoop.blocks(1 + 4 * BLOCKS_PER_SEQUENCE, 5, BLOCK), false));
    float[][] batched = runner.forward(step);
    assertEquals(5, batched.length);
    assertNull(batched[4]);
    for (int i = 0; i < cases.size(); i++) {
      assertTrue(maxAbsDiff(alone.get(i), batched[i]) <= 1e-5f, "sequence " + i);
    }
    // Then one decode step of all four together against each sequence's reference next token.
    List<SequenceChunk> decode = new ArrayList<>();
    for (int i = 0; i < cases.size(); i++) {
      int[] prompt = cases.get(i).prompt();
      decode.add(
          new SequenceChunk(
              i,
              new int[] {cases.get(i).greedyNewTokens()[0]},
              prompt.length,
              step.get(i).blockTable(),
              true));
    }
    float[][] next = runner.forward(decode);
    for (int i = 0; i < cases.size(); i++) {
      assertEquals(cases.get(i).greedyNewTokens()[1], GreedyLoop.argmax(next[i]), "sequence " + i);
    }
  }

  @Test
  void poolSizedFromAHostMemoryBudget() {
    io.kiln.model.llama.LlamaConfig c =
        io.kiln.model.llama.LlamaConfig.load(PublicLlama.directory());
    // K and V, 3 layers, 16 positions, 2 KV heads of 32 floats: 24 KiB per block.
    long perBlock = 2L * 3 * 16 * 2 * 32 * Float.BYTES;
    assertEquals(24576, perBlock);
    assertEquals(
        new KvPoolSpec(100, 16), CpuLlamaRunner.poolFor(c, 100 * perBlock + perBlock / 2, 16));
    assertEquals(
        2, CpuLlamaRunner.poolFor(c, 1, 16).numBlocks(), "at least the null block and one more");
  }

  @Test
  void promptLongerThanTheContextIsRejected() {
    int max = runner.spec().maxPositions();
    int[] table = new int[(max + 64) / BLOCK];
    java.util.Arrays.fill(table, 1);
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () ->
                runner.forward(
                    List.of(new SequenceChunk(1, new int[] {1, 2, 3}, max - 2, table, true))));
    assertTrue(e.getMessage().contains("longer than the model context of " + max), e.getMessage());
  }

  @Test
  void badChunksAreRejectedBeforeCompute() {
    int[] table = {1, 2};
    assertThrows(InvalidInputException.class, () -> runner.forward(List.of()));
    assertThrows(
        InvalidInputException.class,
        () -> runner.forward(List.of(new SequenceChunk(1, new int[] {512}, 0, table, true))));
    assertThrows(
        InvalidInputException.class,
        () ->
            runner.forward(List.of(new SequenceChunk(1, new int[] {1}, 20, new int[] {1}, true))));
    assertThrows(
        InvalidInputException.class,
        () -> runner.forward(List.of(new SequenceChunk(1, new int[] {1}, 0, new int[] {0}, true))));
    assertThrows(
        InvalidInputException.class,
        () ->
            runner.forward(
                List.of(
                    new SequenceChunk(1, new int[] {1}, 0, table, true),
                    new SequenceChunk(1, new int[] {2}, 0, table, true))));
  }
}
