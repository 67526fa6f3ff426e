package io.kiln.execution.kv;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Bookkeeping of a paged KV pool: which fixed-size blocks each sequence holds, which are free, and
 * which full blocks hold known token prefixes that new sequences can share (prefix caching).
 *
 * <p>Block 0 is the null block and never handed out. Free blocks sit in LRU order; a freed sequence
 * returns its blocks tail first, so its later (less shareable) blocks are evicted first. A cached
 * block keeps its contents while free and is taken back on a prefix hit; it leaves the cache only
 * when reallocated. Not thread-safe: the scheduler thread owns it.
 */
public final class KvBlockManager {
  public static final int DEFAULT_BLOCK_SIZE = 16;
  public static final int NULL_BLOCK = 0;

  private final int blockSize;
  private final boolean prefixCaching;
  private final KvBlock[] blocks;
  private final FreeBlockQueue freeQueue = new FreeBlockQueue();
  private final PrefixCache prefixCache = new PrefixCache();
  private final Map<Long, SequenceBlocks> sequences = new HashMap<>();

  /**
   * @param numBlocks pool size including the null block
   */
  public KvBlockManager(int numBlocks, int blockSize, boolean prefixCaching) {
    if (numBlocks < 2) {
      throw new IllegalArgumentException("need at least 2 KV blocks (one is the null block)");
    }
    if (blockSize < 1) {
      throw new IllegalArgumentException("block size must be positive: " + blockSize);
    }
    this.blockSize = blockSize;
    this.prefixCaching = prefixCaching;
    this.blocks = new KvBlock[numBlocks];
    for (int i = 0; i < numBlocks; i++) {
      blocks[i] = new KvBlock(i);
      if (i != NULL_BLOCK) {
        freeQueue.append(blocks[i]);
      }
    }
  }

  public int blockSize() {
    return blockSize;
  }

  /** Blocks that sequences can hold: the pool minus the null block. */
  public int numUsableBlocks() {
    return blocks.length - 1;
  }

  /** Free blocks, including cached ones whose contents may still be reused. */
  public int numFreeBlocks() {
    return freeQueue.size();
  }

  public int numUsedBlocks() {
    return numUsableBlocks() - numFreeBlocks();
  }

  public double usage() {
    return numUsedBlocks() / (double) numUsableBlocks();
  }

  public int numCachedBlocks() {
    return prefixCache.size();
  }

  public int blocksFor(int numTokens) {
    return (numTokens + blockSize - 1) / blockSize;
  }

  public boolean holds(long seqId) {
    return sequences.containsKey(seqId);
  }

  /**
   * The longest run of leading full blocks of {@code tokens} already in the pool, leaving at least
   * the last token to compute (its logits are needed).
   */
  public CachedPrefix findCachedPrefix(int[] tokens) {
    if (!prefixCaching) {
      return CachedPrefix.NONE;
    }
    int maxBlocks = (tokens.length - 1) / blockSize;
    List<KvBlock> hit = new ArrayList<>();
    List<BlockHash> hashes = new ArrayList<>();
    BlockHash parent = null;
    for (int i = 0; i < maxBlocks; i++) {
      BlockHash hash = BlockHash.of(parent, tokens, i * blockSize, blockSize);
      KvBlock block = prefixCache.get(hash);
      if (block == null) {
        break;
      }
      hit.add(block);
      hashes.add(hash);
      parent = hash;
    }
    return hit.isEmpty()
        ? CachedPrefix.NONE
        : new CachedPrefix(hit, hashes, hit.size() * blockSize);
  }

  /** Whether a new sequence with this cached prefix could hold {@code numTokens} tokens now. */
  public boolean canAllocate(CachedPrefix prefix, int numTokens) {
    return newBlocksNeeded(prefix, numTokens) <= numFreeBlocks() - freeBlocksIn(prefix);
  }

  /**
   * Grows {@code seqId}'s block table to hold {@code numTokens} tokens. A new sequence starts with
   * the blocks of {@code prefix} (shared, read-only); a known one ignores it. Changes nothing and
   * returns false when the free blocks do not suffice.
   */
  public boolean allocateSlots(long seqId, CachedPrefix prefix, int numTokens) {
    SequenceBlocks seq = sequences.get(seqId);
    if (seq != null) {
      int needed = blocksFor(numTokens) - seq.table.size();
      if (needed > numFreeBlocks()) {
        return false;
      }
      for (int i = 0; i < needed; i++) {
        seq.table.add(takeFreeBlock());
      }
      return true;
    }
    CachedPrefix shared = prefix == null ? CachedPrefix.NONE : prefix;
    if (!canAllocate(shared, numTokens)) {
      return false;
    }
    seq = new SequenceBlocks();
    for (KvBlock block : shared.blocks) {
      share(block);
      seq.table.add(block);
    }
    seq.hashes.addAll(shared.hashes);
    int needed = newBlocksNeeded(shared, numTokens);
    for (int i = 0; i < needed; i++) {
      seq.table.add(takeFreeBlock());
    }
    sequences.put(seqId, seq);
    return true;
  }

  /**
   * Records that the K/V of {@code tokens[0, numComputedTokens)} are now in {@code seqId}'s blocks,
   * making its newly full blocks available to other sequences.
   */
  public void cacheFullBlocks(long seqId, int[] tokens, int numComputedTokens) {
    SequenceBlocks seq = sequence(seqId);
    if (!prefixCaching) {
      return;
    }
    int full = Math.min(numComputedTokens / blockSize, seq.table.size());
    for (int i = seq.hashes.size(); i < full; i++) {
      BlockHash parent = i == 0 ? null : seq.hashes.get(i - 1);
      BlockHash hash = BlockHash.of(parent, tokens, i * blockSize, blockSize);
      seq.hashes.add(hash);
      prefixCache.register(seq.table.get(i), hash);
    }
  }

  /**
   * Starts {@code childId} sharing the leading cached full blocks of {@code parentId}. Returns the
   * number of tokens shared; the child computes the rest itself.
   */
  public int fork(long parentId, long childId) {
    SequenceBlocks parent = sequence(parentId);
    if (sequences.containsKey(childId)) {
      throw new IllegalStateException("sequence " + childId + " already holds blocks");
    }
    SequenceBlocks child = new SequenceBlocks();
    for (int i = 0; i < parent.hashes.size(); i++) {
      KvBlock block = parent.table.get(i);
      if (block.hash == null || !block.hash.equals(parent.hashes.get(i))) {
        break;
      }
      share(block);
      child.table.add(block);
      child.hashes.add(block.hash);
    }
    sequences.put(childId, child);
    return child.table.size() * blockSize;
  }

  /** Releases all of {@code seqId}'s blocks, tail first; used on finish and on preemption. */
  public void free(long seqId) {
    SequenceBlocks seq = sequences.remove(seqId);
    if (seq == null) {
      return;
    }
    for (int i = seq.table.size() - 1; i >= 0; i--) {
      unshare(seq.table.get(i));
    }
  }

  /**
   * Gives back {@code seqId}'s blocks past those that {@code numTokens} tokens need, tail first:
   * slots reserved for tokens that were never kept (rejected speculation).
   */
  public void trim(long seqId, int numTokens) {
    SequenceBlocks seq = sequence(seqId);
    int keep = Math.max(blocksFor(numTokens), seq.hashes.size());
    for (int i = seq.table.size() - 1; i >= keep; i--) {
      unshare(seq.table.remove(i));
    }
  }

  /** Logical block i of {@code seqId} -> physical block id. */
  public int[] blockTable(long seqId) {
    return sequence(seqId).ids();
  }

  public int numBlocksOf(long seqId) {
    return sequence(seqId).table.size();
  }

  private SequenceBlocks sequence(long seqId) {
    SequenceBlocks seq = sequences.get(seqId);
    if (seq == null) {
      throw new IllegalStateException("sequence " + seqId + " holds no KV blocks");
    }
    return seq;
  }

  private int newBlocksNeeded(CachedPrefix prefix, int numTokens) {
    return Math.max(0, blocksFor(numTokens) - prefix.numBlocks());
  }

  private static int freeBlocksIn(CachedPrefix prefix) {
    int n = 0;
    for (KvBlock block : prefix.blocks) {
      if (block.refCount == 0) {
        n++;
      }
    }
    return n;
  }

  private void share(KvBlock block) {
    if (block.refCount++ == 0) {
      freeQueue.remove(block);
    }
  }

  /** Drops one holder of {@code block}; the last one returns it to the free queue. */
  private void unshare(KvBlock block) {
    if (--block.refCount == 0) {
      freeQueue.append(block);
    }
  }

  private KvBlock takeFreeBlock() {
    KvBlock block = freeQueue.popFront();
    prefixCache.evict(block);
    block.refCount = 1;
    return block;
  }

  // Views for invariant checks in tests.

  KvBlock block(int id) {
    return blocks[id];
  }

  int numBlocksTotal() {
    return blocks.length;
  }

  List<Integer> freeQueueIds() {
    return freeQueue.ids();
  }

  Map<Long, SequenceBlocks> sequences() {
    return sequences;
  }

  PrefixCache prefixCache() {
    return prefixCache;
  }
}
