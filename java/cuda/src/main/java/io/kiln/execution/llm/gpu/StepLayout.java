package io.kiln.execution.llm.gpu;

import io.kiln.InvalidInputException;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.SequenceChunk;
import java.util.Arrays;
import java.util.List;

/**
 * The integer inputs of one step, packed into one array that goes to the device in one copy:
 *
 * <pre>
 * greedyKeys[2L] tokens[T] positions[T] slots[T] rowSeq[T] contextLens[T] logitRows[L]
 * blockTables[R][maxBlocks]
 * </pre>
 *
 * R counts sequences and L logits rows: one per sequence, or more where a sequence verifies
 * speculated tokens. A decode step sizes T, R and L by its graph bucket and an eager step by the
 * maxima, so a graph captured for a bucket always finds its sections at the same offsets, and a
 * batch-1 decode step copies about one block table rather than the whole buffer. {@code greedyKeys}
 * go as zeros: one 64-bit slot per logits row where the LM head's skinny kernel leaves its argmax
 * (see {@link #greedyToken}).
 *
 * <p>An attention row is one token: it reads its sequence ({@code rowSeq}) through that sequence's
 * block table up to {@code contextLens} = its position + 1. Decode steps put one row per sequence
 * and pad to the graph bucket with rows on the null block.
 */
final class StepLayout {
  final int maxTokens;
  final int maxRows;
  final int maxLogitRows;
  final int maxBlocks;
  final int blockSize;
  final int[] data;

  /** Tokens and rows the sections are sized for since the last fill. */
  private int tokenCapacity;

  private int rowCapacity;

  private int logitRowCapacity;

  /** Whether the last fill was a decode step: one new position per row, its last. */
  boolean decode;

  /** Tokens (attention rows) and logits rows of the last fill. */
  int numTokens;

  int numLogitRows;

  /** Chunk index of each logits row. */
  final int[] logitChunk;

  StepLayout(int maxTokens, int maxRows, int maxLogitRows, int maxBlocks, int blockSize) {
    this.maxTokens = maxTokens;
    this.maxRows = maxRows;
    this.maxLogitRows = maxLogitRows;
    this.maxBlocks = maxBlocks;
    this.blockSize = blockSize;
    this.data = new int[3 * maxLogitRows + 5 * maxTokens + maxRows * maxBlocks];
    this.logitChunk = new int[maxLogitRows];
    sizeFor(maxTokens, maxRows, maxLogitRows);
  }

  private void sizeFor(int tokens, int rows, int logitRows) {
    tokenCapacity = tokens;
    rowCapacity = rows;
    logitRowCapacity = logitRows;
    Arrays.fill(data, 0, 2 * logitRows, 0);
  }

  /** Where the greedy keys start: first, so that the 64-bit slots stay 8-byte aligned. */
  int greedyKeys() {
    return 0;
  }

  int tokens() {
    return 2 * logitRowCapacity;
  }

  int positions() {
    return tokens() + tokenCapacity;
  }

  int slots() {
    return tokens() + 2 * tokenCapacity;
  }

  int rowSeq() {
    return tokens() + 3 * tokenCapacity;
  }

  int contextLens() {
    return tokens() + 4 * tokenCapacity;
  }

  int logitRows() {
    return tokens() + 5 * tokenCapacity;
  }

  int blockTables() {
    return logitRows() + logitRowCapacity;
  }

  /** Ints of {@link #data} the last fill uses: what goes to the device. */
  int used() {
    return blockTables() + rowCapacity * maxBlocks;
  }

  /**
   * The token of a greedy key: the argmax's index sits in the low word as its complement, so that
   * the largest key is the largest logit at the lowest index. Zero (no logit seen, all NaN) gives
   * token 0, as the argmax kernel does. All ones marks a row with a NaN or infinite logit.
   */
  static int greedyToken(long key) {
    if (key == -1L) {
      return ModelRunner.NON_FINITE;
    }
    return key == 0 ? 0 : (int) (0xffffffffL - (key & 0xffffffffL));
  }

  /** A decode step: one token per chunk, padded to {@code bucket} rows. */
  void fillDecode(List<SequenceChunk> batch, int bucket) {
    if (batch.size() > bucket || bucket > maxRows) {
      throw new InvalidInputException(
          batch.size() + " sequences do not fit a decode bucket of " + bucket);
    }
    sizeFor(bucket, bucket, bucket);
    decode = true;
    for (int i = 0; i < bucket; i++) {
      boolean real = i < batch.size();
      SequenceChunk c = real ? batch.get(i) : null;
      int position = real ? c.startPosition() : 0;
      data[tokens() + i] = real ? c.tokens()[0] : 0;
      data[positions() + i] = position;
      data[slots() + i] = real ? slot(c.blockTable(), position) : 0;
      data[rowSeq() + i] = i;
      data[contextLens() + i] = position + 1;
      data[logitRows() + i] = i;
      logitChunk[i] = i;
      if (real) {
        copyTable(i, c.blockTable(), position + 1);
      } else {
        data[blockTables() + i * maxBlocks] = 0;
      }
    }
    numTokens = bucket;
    numLogitRows = bucket;
  }

  /** The logits-row owner of padding rows: no chunk. */
  static final int NO_CHUNK = Integer.MAX_VALUE;

  /**
   * A verification step: sequence i's chunk (its last token, then up to {@code k} proposed tokens,
   * every position wanting logits) in rows {@code i * (k + 1)} on, padded to {@code k + 1} rows per
   * sequence and to {@code bucket} sequences with rows on the null block. Sized by (bucket, k)
   * alone, so that a graph captured for it finds every section where it left it. Any chunk of at
   * most k + 1 positions fits (a draft's first round wants only its last position's logits): every
   * row gets logits, and those of positions that its chunk does not want belong to no chunk.
   */
  void fillVerify(List<SequenceChunk> batch, int bucket, int k) {
    int width = k + 1;
    int rows = bucket * width;
    if (batch.size() > bucket || bucket > maxRows || rows > maxTokens || rows > maxLogitRows) {
      throw new InvalidInputException(
          batch.size() + " sequences verifying " + k + " tokens do not fit a bucket of " + bucket);
    }
    sizeFor(rows, bucket, rows);
    decode = false;
    for (int i = 0; i < bucket; i++) {
      SequenceChunk c = i < batch.size() ? batch.get(i) : null;
      int n = c == null ? 0 : c.tokens().length;
      if (n > width) {
        throw new InvalidInputException(
            "request "
                + c.requestId()
                + ": "
                + n
                + " positions, more than the "
                + width
                + " graphed");
      }
      int firstWanted = c == null ? 0 : n - c.numLogits();
      for (int j = 0; j < width; j++) {
        int t = i * width + j;
        boolean real = j < n;
        int position = real ? c.startPosition() + j : 0;
        data[tokens() + t] = real ? c.tokens()[j] : 0;
        data[positions() + t] = position;
        data[slots() + t] = real ? slot(c.blockTable(), position) : 0;
        data[rowSeq() + t] = i;
        data[contextLens() + t] = position + 1;
        data[logitRows() + t] = t;
        logitChunk[t] = real && j >= firstWanted ? i : NO_CHUNK;
      }
      if (c != null) {
        copyTable(i, c.blockTable(), c.startPosition() + n);
      } else {
        Arrays.fill(data, blockTables() + i * maxBlocks, blockTables() + (i + 1) * maxBlocks, 0);
      }
    }
    numTokens = rows;
    numLogitRows = rows;
  }

  /** Any step (prefill, chunked prefill, mixed): one attention row per token. */
  void fillEager(List<SequenceChunk> batch) {
    if (batch.size() > maxRows) {
      throw new InvalidInputException(
          batch.size() + " sequences in one step, more than the " + maxRows + " configured");
    }
    sizeFor(maxTokens, maxRows, maxLogitRows);
    decode = false;
    int t = 0;
    int rows = 0;
    for (int s = 0; s < batch.size(); s++) {
      SequenceChunk c = batch.get(s);
      int n = c.tokens().length;
      if (t + n > maxTokens) {
        throw new InvalidInputException(
            "a step of more than " + maxTokens + " tokens; raise the runner's max batched tokens");
      }
      for (int j = 0; j < n; j++, t++) {
        int position = c.startPosition() + j;
        data[tokens() + t] = c.tokens()[j];
        data[positions() + t] = position;
        data[slots() + t] = slot(c.blockTable(), position);
        data[rowSeq() + t] = s;
        data[contextLens() + t] = position + 1;
      }
      copyTable(s, c.blockTable(), c.startPosition() + n);
      if (rows + c.numLogits() > maxLogitRows) {
        throw new InvalidInputException(
            "a step wanting more than " + maxLogitRows + " logits rows; verify fewer tokens");
      }
      for (int j = c.numLogits(); j > 0; j--) {
        data[logitRows() + rows] = t - j;
        logitChunk[rows++] = s;
      }
    }
    numTokens = t;
    numLogitRows = rows;
  }

  private int slot(int[] table, int position) {
    return table[position / blockSize] * blockSize + position % blockSize;
  }

  private void copyTable(int row, int[] table, int positions) {
    int needed = (positions + blockSize - 1) / blockSize;
    if (needed > maxBlocks) {
      throw new InvalidInputException(
          "a sequence of "
              + positions
              + " positions is longer than the runner's max model length of "
              + maxBlocks * blockSize);
    }
    System.arraycopy(table, 0, data, blockTables() + row * maxBlocks, needed);
    Arrays.fill(
        data, blockTables() + row * maxBlocks + needed, blockTables() + (row + 1) * maxBlocks, 0);
  }
}
