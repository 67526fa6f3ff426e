package io.kiln.execution.kv;

import java.util.ArrayList;
import java.util.List;

/**
 * One sequence's block table (it grows, and sheds only uncomputed tail blocks) and the content
 * hashes of its full computed blocks.
 */
final class SequenceBlocks {
  final List<KvBlock> table = new ArrayList<>();
  final List<BlockHash> hashes = new ArrayList<>();

  int[] ids() {
    int[] ids = new int[table.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = table.get(i).id;
    }
    return ids;
  }
}
