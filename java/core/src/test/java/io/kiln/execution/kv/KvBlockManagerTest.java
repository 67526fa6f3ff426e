package io.kiln.execution.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class KvBlockManagerTest {
  private static int[] range(int from, int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = from + i;
    }
    return t;
  }

  @Test
  void neverHandsOutTheNullBlockAndAllocatesInLruOrder() {
    KvBlockManager m = new KvBlockManager(5, 4, true);
    assertEquals(4, m.numUsableBlocks());
    assertTrue(m.allocateSlots(1, null, 16));
    assertArrayEquals(new int[] {1, 2, 3, 4}, m.blockTable(1));
    assertEquals(0, m.numFreeBlocks());
    assertFalse(m.allocateSlots(2, null, 1));
    assertFalse(m.holds(2));
  }

  @Test
  void trimGivesBackTheBlocksPastTheKeptTokensButNeverCachedOnes() {
    KvBlockManager m = new KvBlockManager(10, 4, true);
    int[] tokens = range(100, 20);
    assertTrue(m.allocateSlots(1, null, 20)); // blocks 1..5
    m.cacheFullBlocks(1, tokens, 9); // blocks 1 and 2 hold known tokens
    m.trim(1, 9);
    assertArrayEquals(new int[] {1, 2, 3}, m.blockTable(1));
    assertEquals(6, m.numFreeBlocks());
    m.trim(1, 2);
    assertArrayEquals(new int[] {1, 2}, m.blockTable(1), "cached full blocks stay");
    m.free(1);
    assertEquals(m.numUsableBlocks(), m.numFreeBlocks());
    // The cached prefix is still found: trimming never uncached a verified block.
    assertEquals(8, m.findCachedPrefix(tokens).numTokens());
  }

  @Test
  void freedBlocksReturnTailFirst() {
    KvBlockManager m = new KvBlockManager(8, 4, false);
    assertTrue(m.allocateSlots(1, null, 12)); // blocks 1,2,3
    m.free(1);
    // 4..7 were never used, then 3,2,1: the sequence's tail is evicted before its head.
    assertEquals(List.of(4, 5, 6, 7, 3, 2, 1), m.freeQueueIds());
    assertTrue(m.allocateSlots(2, null, 20));
    assertArrayEquals(new int[] {4, 5, 6, 7, 3}, m.blockTable(2));
  }

  @Test
  void failedGrowthChangesNothing() {
    KvBlockManager m = new KvBlockManager(4, 4, false);
    assertTrue(m.allocateSlots(1, null, 5));
    assertFalse(m.allocateSlots(1, null, 13));
    assertEquals(2, m.numBlocksOf(1));
    assertEquals(1, m.numFreeBlocks());
    assertTrue(m.allocateSlots(1, null, 12));
    assertEquals(0, m.numFreeBlocks());
  }

  @Test
  void prefixHitSharesFullBlocksAndLeavesTheLastTokenToCompute() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] tokens = range(100, 10);
    assertTrue(m.allocateSlots(1, null, tokens.length));
    m.cacheFullBlocks(1, tokens, tokens.length);
    assertEquals(2, m.numCachedBlocks());

    CachedPrefix hit = m.findCachedPrefix(tokens);
    assertEquals(8, hit.numTokens());
    assertTrue(m.allocateSlots(2, hit, tokens.length));
    int[] a = m.blockTable(1);
    int[] b = m.blockTable(2);
    assertEquals(a[0], b[0]);
    assertEquals(a[1], b[1]);
    assertNotEquals(a[2], b[2]);
    assertEquals(2, m.block(a[0]).refCount);

    // Exactly 8 tokens: the second block is full but holds the last token, so it is recomputed.
    assertEquals(4, m.findCachedPrefix(range(100, 8)).numTokens());
    // A different first block breaks the chain even if later tokens agree.
    int[] other = tokens.clone();
    other[0] = 7;
    assertEquals(0, m.findCachedPrefix(other).numTokens());
  }

  @Test
  void cachedFreeBlocksAreReusedOnHitAndForgottenWhenReallocated() {
    KvBlockManager m = new KvBlockManager(4, 4, true);
    int[] tokens = range(1, 9);
    assertTrue(m.allocateSlots(1, null, 9)); // blocks 1,2,3
    m.cacheFullBlocks(1, tokens, 9);
    m.free(1);
    assertEquals(3, m.numFreeBlocks());
    CachedPrefix hit = m.findCachedPrefix(tokens);
    assertEquals(8, hit.numTokens());
    assertTrue(m.canAllocate(hit, 9));
    assertTrue(m.allocateSlots(2, hit, 9));
    assertArrayEquals(new int[] {1, 2, 3}, m.blockTable(2));
    m.free(2);

    // Free order is 3,2,1: a new sequence overwrites 3 then 2; their hashes must go.
    assertTrue(m.allocateSlots(3, null, 5));
    assertArrayEquals(new int[] {3, 2}, m.blockTable(3));
    assertNull(m.block(2).hash);
    assertEquals(1, m.numCachedBlocks());
    assertEquals(4, m.findCachedPrefix(tokens).numTokens());
  }

  @Test
  void hitOnFreeCachedBlocksCountsThemAgainstCapacity() {
    KvBlockManager m = new KvBlockManager(4, 4, true);
    int[] tokens = range(1, 12);
    assertTrue(m.allocateSlots(1, null, 12));
    m.cacheFullBlocks(1, tokens, 12);
    m.free(1);
    CachedPrefix hit = m.findCachedPrefix(range(1, 13)); // 3 cached blocks, needs 1 more
    assertEquals(12, hit.numTokens());
    assertFalse(m.canAllocate(hit, 13));
    assertFalse(m.allocateSlots(2, hit, 13));
    assertEquals(3, m.numFreeBlocks());
    assertEquals(3, m.numCachedBlocks());
  }

  @Test
  void forkSharesOnlyCachedFullBlocks() {
    KvBlockManager m = new KvBlockManager(16, 4, true);
    int[] tokens = range(5, 10);
    assertTrue(m.allocateSlots(1, null, 10));
    m.cacheFullBlocks(1, tokens, 10);
    assertEquals(8, m.fork(1, 2));
    assertArrayEquals(new int[] {m.blockTable(1)[0], m.blockTable(1)[1]}, m.blockTable(2));
    assertThrows(IllegalStateException.class, () -> m.fork(1, 2));
    assertThrows(IllegalStateException.class, () -> m.fork(9, 3));
  }

  @Test
  void withoutPrefixCachingNothingIsShared() {
    KvBlockManager m = new KvBlockManager(16, 4, false);
    int[] tokens = range(5, 10);
    assertTrue(m.allocateSlots(1, null, 10));
    m.cacheFullBlocks(1, tokens, 10);
    assertEquals(0, m.findCachedPrefix(tokens).numTokens());
    assertEquals(0, m.numCachedBlocks());
  }
}
