package io.kiln.execution.llm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A deterministic stand-in for a model whose logits depend on the whole token history, and which
 * reads that history back only through its own paged pool. A wrong block table, a block shared when
 * it should not be, or a block overwritten while another sequence still reads it changes the
 * tokens; reading a slot that holds another position fails outright. {@link #reference} computes
 * the same tokens without any pool.
 */
final class ToyModelRunner implements ModelRunner {
  private final ModelSpec spec;
  private final KvPoolSpec pool;
  private final long[] values;
  private final int[] positions;
  private final long salt;
  final List<List<SequenceChunk>> batches = new ArrayList<>();
  volatile long stepDelayMillis;
  volatile RuntimeException failNext;

  /** A prompt that starts with this token gets a NaN in its first logits (a broken model). */
  volatile int poisonToken = -1;

  ToyModelRunner(int vocab, int maxPositions, int numBlocks, int blockSize, int eos) {
    this(vocab, maxPositions, numBlocks, blockSize, eos, 0);
  }

  /** A runner whose logits differ from the unsalted one's (a second model, say a draft). */
  ToyModelRunner(int vocab, int maxPositions, int numBlocks, int blockSize, int eos, long salt) {
    this.salt = salt;
    this.spec = new ModelSpec(1, 1, 1, vocab, maxPositions, eos);
    this.pool = new KvPoolSpec(numBlocks, blockSize);
    this.values = new long[numBlocks * blockSize];
    this.positions = new int[numBlocks * blockSize];
    Arrays.fill(positions, -1);
  }

  @Override
  public ModelSpec spec() {
    return spec;
  }

  @Override
  public KvPoolSpec kvPool() {
    return pool;
  }

  @Override
  public synchronized float[][] forward(List<SequenceChunk> batch) {
    batches.add(List.copyOf(batch));
    if (stepDelayMillis > 0) {
      try {
        Thread.sleep(stepDelayMillis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    RuntimeException failure = failNext;
    if (failure != null) {
      failNext = null;
      throw failure;
    }
    float[][] out = new float[batch.size()][];
    for (int c = 0; c < batch.size(); c++) {
      SequenceChunk chunk = batch.get(c);
      int n = chunk.tokens().length;
      int m = chunk.numLogits();
      int vocab = spec.vocabSize();
      if (m > 0) {
        out[c] = new float[m * vocab];
      }
      for (int i = 0; i < n; i++) {
        int p = chunk.startPosition() + i;
        long history = 0;
        for (int j = 0; j < p; j++) {
          history = mix(history * 31 + read(chunk, j));
        }
        long value = step(history, chunk.tokens()[i], p);
        int s = slot(chunk, p);
        values[s] = value;
        positions[s] = p;
        if (i >= n - m) {
          System.arraycopy(logits(value ^ salt, vocab), 0, out[c], (i - (n - m)) * vocab, vocab);
        }
      }
      if (m > 0 && poisoned(chunk)) {
        out[c][n % vocab] = Float.NaN;
      }
    }
    return out;
  }

  /** A prompt short enough to prefill in one chunk whose first token is the poison. */
  private boolean poisoned(SequenceChunk chunk) {
    return poisonToken >= 0 && chunk.startPosition() == 0 && chunk.tokens()[0] == poisonToken;
  }

  private int slot(SequenceChunk chunk, int position) {
    int logical = position / pool.blockSize();
    if (logical >= chunk.blockTable().length) {
      throw new IllegalStateException(
          "request " + chunk.requestId() + ": no block for position " + position);
    }
    int block = chunk.blockTable()[logical];
    if (block <= 0 || block >= pool.numBlocks()) {
      throw new IllegalStateException(
          "request " + chunk.requestId() + ": bad block " + block + " at position " + position);
    }
    return block * pool.blockSize() + position % pool.blockSize();
  }

  /** Checks a read: the slot must hold the position asked for. */
  private long read(SequenceChunk chunk, int position) {
    int s = slot(chunk, position);
    if (positions[s] != position) {
      throw new IllegalStateException(
          "request "
              + chunk.requestId()
              + ": slot for position "
              + position
              + " holds position "
              + positions[s]);
    }
    return values[s];
  }

  static long step(long history, int token, int position) {
    return mix(history ^ (token * 0x9e3779b97f4a7c15L) ^ ((long) position << 40));
  }

  static float[] logits(long value, int vocab) {
    float[] logits = new float[vocab];
    for (int i = 0; i < vocab; i++) {
      logits[i] = (float) ((mix(value + i) >>> 11) * 0x1.0p-53 * 8 - 4);
    }
    return logits;
  }

  static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  /** Greedy tokens computed directly from the token history, without any pool. */
  static int[] reference(int[] prompt, int newTokens, int vocab, int eos) {
    List<Long> values = new ArrayList<>();
    int[] tokens = Arrays.copyOf(prompt, prompt.length + newTokens);
    int n = prompt.length;
    int[] out = new int[newTokens];
    int produced = 0;
    int computed = 0;
    while (produced < newTokens) {
      long value = 0;
      for (int p = computed; p < n; p++) {
        long history = 0;
        for (int j = 0; j < p; j++) {
          history = mix(history * 31 + values.get(j));
        }
        value = step(history, tokens[p], p);
        values.add(value);
      }
      computed = n;
      float[] logits = logits(value, vocab);
      int best = 0;
      for (int i = 1; i < vocab; i++) {
        if (logits[i] > logits[best]) {
          best = i;
        }
      }
      out[produced++] = best;
      tokens[n++] = best;
      if (best == eos) {
        return Arrays.copyOf(out, produced);
      }
    }
    return out;
  }

  @Override
  public void close() {}
}
