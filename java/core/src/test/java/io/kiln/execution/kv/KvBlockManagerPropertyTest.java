package io.kiln.execution.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Drives the block manager with seeded random admit / grow / finish / preempt / fork sequences
 * against a simulated pool and an independent model of the LRU free list, checking after every step
 * that no block leaks, none is used twice unless it is a shared cached full block, reference counts
 * match the tables, cached blocks hold exactly the tokens their hashes claim, and blocks are handed
 * out in LRU order.
 */
class KvBlockManagerPropertyTest {
  private static final int SEEDS = 40;
  private static final int STEPS = 1500;

  private static final class Seq {
    final long id;
    int[] tokens;
    int computed;

    Seq(long id, int[] tokens, int computed) {
      this.id = id;
      this.tokens = tokens;
      this.computed = computed;
    }
  }

  private final class Run {
    final SplittableRandom rnd;
    final KvBlockManager m;
    final int bs;
    final int[][] pool; // block -> token written at each slot, -1 when never written
    final List<Integer> modelFree = new ArrayList<>();
    final List<Seq> running = new ArrayList<>(); // oldest first
    final Deque<Seq> preempted = new ArrayDeque<>();
    final int[][] documents;
    long nextId = 1;
    int hits;
    int preemptions;
    int forks;
    int failedAllocations;

    Run(long seed) {
      rnd = new SplittableRandom(seed);
      int numBlocks = 6 + rnd.nextInt(40);
      bs = new int[] {1, 2, 3, 4, 16}[rnd.nextInt(5)];
      m = new KvBlockManager(numBlocks, bs, rnd.nextInt(5) != 0);
      pool = new int[numBlocks][bs];
      for (int[] b : pool) {
        Arrays.fill(b, -1);
      }
      for (int i = 1; i < numBlocks; i++) {
        modelFree.add(i);
      }
      documents = new int[3][];
      for (int d = 0; d < documents.length; d++) {
        documents[d] = randomTokens(96, 4);
      }
    }

    int[] randomTokens(int n, int vocab) {
      int[] t = new int[n];
      for (int i = 0; i < n; i++) {
        t[i] = rnd.nextInt(vocab);
      }
      return t;
    }

    void step() {
      int op = rnd.nextInt(100);
      if (op < 25) {
        admit();
      } else if (op < 60) {
        grow();
      } else if (op < 75) {
        finish();
      } else if (op < 88) {
        preemptNewest();
      } else {
        fork();
      }
      checkInvariants();
    }

    void admit() {
      Seq seq;
      if (!preempted.isEmpty() && rnd.nextBoolean()) {
        seq = preempted.peekFirst();
      } else {
        int[] doc = documents[rnd.nextInt(documents.length)];
        int[] prefix = Arrays.copyOf(doc, 1 + rnd.nextInt(48));
        int[] suffix = randomTokens(rnd.nextInt(12), 4);
        int[] tokens = Arrays.copyOf(prefix, prefix.length + suffix.length);
        System.arraycopy(suffix, 0, tokens, prefix.length, suffix.length);
        seq = new Seq(nextId++, tokens, 0);
      }
      CachedPrefix hit = m.findCachedPrefix(seq.tokens);
      assertEquals(0, hit.numTokens() % bs);
      assertTrue(hit.numTokens() < seq.tokens.length, "the last token must stay to compute");
      for (int i = 0; i < hit.numBlocks(); i++) {
        KvBlock b = hit.blocks.get(i);
        for (int s = 0; s < bs; s++) {
          assertEquals(seq.tokens[i * bs + s], pool[b.id][s], "cached block holds other tokens");
        }
      }
      // Compute a chunk of the prompt now, the rest in later grow steps (chunked prefill).
      int target = hit.numTokens() + 1 + rnd.nextInt(seq.tokens.length - hit.numTokens());
      List<Integer> expectedFree = new ArrayList<>(modelFree);
      for (KvBlock b : hit.blocks) {
        expectedFree.remove(Integer.valueOf(b.id));
      }
      int needed = m.blocksFor(target) - hit.numBlocks();
      boolean fits = needed <= expectedFree.size();
      assertEquals(fits, m.canAllocate(hit, target));
      boolean ok = m.allocateSlots(seq.id, hit, target);
      assertEquals(fits, ok);
      if (!ok) {
        failedAllocations++;
        assertFalse(m.holds(seq.id));
        return;
      }
      if (!preempted.isEmpty() && preempted.peekFirst() == seq) {
        preempted.removeFirst();
      }
      if (hit.numTokens() > 0) {
        hits++;
      }
      int[] table = m.blockTable(seq.id);
      for (int i = 0; i < needed; i++) {
        assertEquals(expectedFree.get(i), table[hit.numBlocks() + i], "not LRU order");
      }
      modelFree.clear();
      modelFree.addAll(expectedFree.subList(needed, expectedFree.size()));
      seq.computed = hit.numTokens();
      compute(seq, target);
      running.add(seq);
    }

    void grow() {
      if (running.isEmpty()) {
        return;
      }
      Seq seq = running.get(rnd.nextInt(running.size()));
      if (seq.computed == seq.tokens.length) {
        int[] more = randomTokens(1 + rnd.nextInt(bs + 2), 4);
        int[] tokens = Arrays.copyOf(seq.tokens, seq.tokens.length + more.length);
        System.arraycopy(more, 0, tokens, seq.tokens.length, more.length);
        seq.tokens = tokens;
      }
      int target = seq.computed + 1 + rnd.nextInt(seq.tokens.length - seq.computed);
      int needed = Math.max(0, m.blocksFor(target) - m.numBlocksOf(seq.id));
      boolean ok = m.allocateSlots(seq.id, null, target);
      assertEquals(needed <= modelFree.size(), ok);
      if (!ok) {
        failedAllocations++;
        return;
      }
      int[] table = m.blockTable(seq.id);
      for (int i = 0; i < needed; i++) {
        assertEquals(modelFree.get(0), table[table.length - needed + i], "not LRU order");
        modelFree.remove(0);
      }
      compute(seq, target);
    }

    void compute(Seq seq, int target) {
      int[] table = m.blockTable(seq.id);
      for (int p = seq.computed; p < target; p++) {
        KvBlock b = m.block(table[p / bs]);
        assertEquals(1, b.refCount, "writing into a shared block");
        assertTrue(b.hash == null, "writing into a cached block");
        pool[b.id][p % bs] = seq.tokens[p];
      }
      seq.computed = target;
      m.cacheFullBlocks(seq.id, seq.tokens, target);
    }

    void finish() {
      if (!running.isEmpty()) {
        release(running.remove(rnd.nextInt(running.size())));
      }
    }

    void preemptNewest() {
      if (running.isEmpty()) {
        return;
      }
      Seq seq = running.remove(running.size() - 1);
      release(seq);
      seq.computed = 0;
      preempted.addFirst(seq);
      preemptions++;
    }

    void release(Seq seq) {
      int[] table = m.blockTable(seq.id);
      Map<Integer, Integer> heldByOthers = new HashMap<>();
      for (Seq other : running) {
        if (other != seq) {
          for (int id : m.blockTable(other.id)) {
            heldByOthers.merge(id, 1, Integer::sum);
          }
        }
      }
      m.free(seq.id);
      for (int i = table.length - 1; i >= 0; i--) {
        if (!heldByOthers.containsKey(table[i])) {
          modelFree.add(table[i]);
        }
      }
    }

    void fork() {
      if (running.isEmpty()) {
        return;
      }
      Seq parent = running.get(rnd.nextInt(running.size()));
      Seq child = new Seq(nextId++, null, 0);
      int shared = m.fork(parent.id, child.id);
      assertEquals(0, shared % bs);
      assertTrue(shared <= parent.computed);
      child.tokens = Arrays.copyOf(parent.tokens, Math.max(shared, 1));
      if (shared == 0) {
        child.tokens[0] = rnd.nextInt(4);
      }
      child.computed = shared;
      int[] pt = m.blockTable(parent.id);
      int[] ct = m.blockTable(child.id);
      assertEquals(shared / bs, ct.length);
      for (int i = 0; i < ct.length; i++) {
        assertEquals(pt[i], ct[i]);
      }
      running.add(child);
      forks++;
    }

    void checkInvariants() {
      int total = m.numBlocksTotal();
      int[] occurrences = new int[total];
      for (Seq seq : running) {
        int[] table = m.blockTable(seq.id);
        assertEquals(m.blocksFor(seq.computed), table.length, "table length");
        for (int id : table) {
          occurrences[id]++;
        }
        // Everything computed must still be readable back from the pool.
        for (int p = 0; p < seq.computed; p++) {
          assertEquals(seq.tokens[p], pool[table[p / bs]][p % bs], "K/V of seq overwritten");
        }
      }
      assertEquals(running.size(), m.sequences().size());
      assertEquals(0, occurrences[KvBlockManager.NULL_BLOCK], "null block handed out");
      assertEquals(0, m.block(KvBlockManager.NULL_BLOCK).refCount);
      int used = 0;
      for (int id = 1; id < total; id++) {
        KvBlock b = m.block(id);
        assertEquals(occurrences[id], b.refCount, "ref count of block " + id);
        assertEquals(b.refCount == 0, b.inFreeQueue, "free flag of block " + id);
        if (b.refCount > 1) {
          assertNotNull(b.hash, "block " + id + " shared but not a cached full block");
        }
        if (b.refCount > 0) {
          used++;
        }
        if (b.hash != null) {
          assertSame(b, m.prefixCache().get(b.hash));
        }
      }
      assertEquals(total - 1, used + m.numFreeBlocks(), "leak");
      assertEquals(used, m.numUsedBlocks());
      assertEquals(modelFree, m.freeQueueIds(), "LRU order");
      for (Map.Entry<BlockHash, KvBlock> e : m.prefixCache().entries().entrySet()) {
        assertSame(e.getKey(), e.getValue().hash);
      }
    }
  }

  @Test
  void randomOperationSequencesKeepTheInvariants() {
    int hits = 0;
    int preemptions = 0;
    int forks = 0;
    int failed = 0;
    for (long seed = 0; seed < SEEDS; seed++) {
      Run run = new Run(seed);
      try {
        for (int i = 0; i < STEPS; i++) {
          run.step();
        }
        while (!run.running.isEmpty()) {
          run.finish();
          run.checkInvariants();
        }
      } catch (AssertionError e) {
        throw new AssertionError("seed " + seed + ": " + e.getMessage(), e);
      }
      assertEquals(run.m.numUsableBlocks(), run.m.numFreeBlocks(), "seed " + seed + " leaked");
      hits += run.hits;
      preemptions += run.preemptions;
      forks += run.forks;
      failed += run.failedAllocations;
    }
    // The random mix must actually exercise the interesting paths.
    assertTrue(hits > 100, "prefix hits: " + hits);
    assertTrue(preemptions > 100, "preemptions: " + preemptions);
    assertTrue(forks > 100, "forks: " + forks);
    assertTrue(failed > 100, "failed allocations: " + failed);
  }
}
