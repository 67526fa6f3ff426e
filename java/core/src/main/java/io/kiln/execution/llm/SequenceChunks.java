package io.kiln.execution.llm;

import io.kiln.InvalidInputException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Checks a step's chunks against the model and the KV pool before any compute. */
public final class SequenceChunks {
  private SequenceChunks() {}

  public static void validate(List<SequenceChunk> batch, ModelSpec spec, KvPoolSpec pool) {
    if (batch == null || batch.isEmpty()) {
      throw new InvalidInputException("forward needs at least one sequence chunk");
    }
    Set<Long> seen = new HashSet<>();
    for (SequenceChunk c : batch) {
      if (c == null || c.tokens() == null || c.tokens().length == 0) {
        throw new InvalidInputException("every sequence chunk needs at least one token");
      }
      if (!seen.add(c.requestId())) {
        throw new InvalidInputException("request " + c.requestId() + " appears twice in one step");
      }
      for (int t : c.tokens()) {
        if (t < 0 || t >= spec.vocabSize()) {
          throw new InvalidInputException(
              "request "
                  + c.requestId()
                  + ": token id "
                  + t
                  + " outside the vocabulary [0, "
                  + spec.vocabSize()
                  + ")");
        }
      }
      if (c.startPosition() < 0) {
        throw new InvalidInputException(
            "request " + c.requestId() + ": negative start position " + c.startPosition());
      }
      long end = (long) c.startPosition() + c.tokens().length;
      if (end > spec.maxPositions()) {
        throw new InvalidInputException(
            "request "
                + c.requestId()
                + ": sequence of "
                + end
                + " positions is longer than the model context of "
                + spec.maxPositions());
      }
      int[] table = c.blockTable();
      int blocksNeeded = (int) ((end + pool.blockSize() - 1) / pool.blockSize());
      if (table == null || table.length < blocksNeeded) {
        throw new InvalidInputException(
            "request "
                + c.requestId()
                + ": block table covers "
                + (table == null ? 0 : table.length)
                + " blocks, positions up to "
                + end
                + " need "
                + blocksNeeded);
      }
      for (int i = 0; i < table.length; i++) {
        int b = table[i];
        boolean used = i < blocksNeeded;
        if (b < 0 || b >= pool.numBlocks() || (used && b == 0)) {
          throw new InvalidInputException(
              "request "
                  + c.requestId()
                  + ": block table entry "
                  + i
                  + " is "
                  + b
                  + (used ? ", expected a block in [1, " : ", expected a block in [0, ")
                  + pool.numBlocks()
                  + ")");
        }
      }
    }
  }
}
