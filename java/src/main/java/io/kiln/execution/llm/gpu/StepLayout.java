package io.kiln.execution.llm.gpu;

import io.kiln.InvalidInputException;
import io.kiln.execution.llm.SequenceChunk;
import java.util.Arrays;
import java.util.List;

/**
 * The integer inputs of one step, packed into one array that goes to the device in one copy.
 * Sections sit at fixed offsets, so graphs captured against the device copy stay valid:
 *
 * <pre>
 * tokens[T] positions[T] slots[T] rowSeq[T] contextLens[T] logitRows[R] blockTables[R][maxBlocks]
 * </pre>
 *
 * An attention row is one token: it reads its sequence ({@code rowSeq}) through that sequence's
 * block table up to {@code contextLens} = its position + 1. Decode steps put one row per sequence
 * and pad to the graph bucket with rows on the null block.
 */
final class StepLayout {
  final int maxTokens;
  final int maxRows;
  final int maxBlocks;
  final int blockSize;
  final int[] data;

  /** Tokens (attention rows) and logits rows of the last fill. */
  int numTokens;

  int numLogitRows;

  /** Chunk index of each logits row. */
  final int[] logitChunk;

  StepLayout(int maxTokens, int maxRows, int maxBlocks, int blockSize) {
    this.maxTokens = maxTokens;
    this.maxRows = maxRows;
    this.maxBlocks = maxBlocks;
    this.blockSize = blockSize;
    this.data = new int[5 * maxTokens + maxRows + maxRows * maxBlocks];
    this.logitChunk = new int[maxRows];
  }

  int tokens() {
    return 0;
  }

  int positions() {
    return maxTokens;
  }

  int slots() {
    return 2 * maxTokens;
  }

  int rowSeq() {
    return 3 * maxTokens;
  }

  int contextLens() {
    return 4 * maxTokens;
  }

  int logitRows() {
    return 5 * maxTokens;
  }

  int blockTables() {
    return 5 * maxTokens + maxRows;
  }

  /** A decode step: one token per chunk, padded to {@code bucket} rows. */
  void fillDecode(List<SequenceChunk> batch, int bucket) {
    if (batch.size() > bucket || bucket > maxRows) {
      throw new InvalidInputException(
          batch.size() + " sequences do not fit a decode bucket of " + bucket);
    }
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

  /** Any step (prefill, chunked prefill, mixed): one attention row per token. */
  void fillEager(List<SequenceChunk> batch) {
    if (batch.size() > maxRows) {
      throw new InvalidInputException(
          batch.size() + " sequences in one step, more than the " + maxRows + " configured");
    }
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
      if (c.wantLogits()) {
        data[logitRows() + rows] = t - 1;
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
