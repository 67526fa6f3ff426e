package io.kiln.execution.kv;

import java.util.HashMap;
import java.util.Map;

/** Full blocks whose contents are known, by content hash; a block stays here until reallocated. */
final class PrefixCache {
  private final Map<BlockHash, KvBlock> blocks = new HashMap<>();

  KvBlock get(BlockHash hash) {
    return blocks.get(hash);
  }

  /** Registers a freshly filled block; a second block with the same contents stays private. */
  void register(KvBlock block, BlockHash hash) {
    if (block.hash != null) {
      return;
    }
    if (blocks.putIfAbsent(hash, block) == null) {
      block.hash = hash;
    }
  }

  /** Forgets a block that is about to be overwritten with other contents. */
  void evict(KvBlock block) {
    if (block.hash != null) {
      blocks.remove(block.hash, block);
      block.hash = null;
    }
  }

  int size() {
    return blocks.size();
  }

  Map<BlockHash, KvBlock> entries() {
    return blocks;
  }
}
