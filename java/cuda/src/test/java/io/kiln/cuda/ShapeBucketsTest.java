package io.kiln.cuda;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.InvalidInputException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ShapeBucketsTest {
  @Test
  void defaultBatchListIsOneTwoFourThenMultiplesOfEight() {
    assertArrayEquals(new int[] {1, 2, 4, 8, 16, 24, 32}, ShapeBuckets.defaultBatches(32));
    assertArrayEquals(new int[] {1, 2, 4, 8, 12}, ShapeBuckets.defaultBatches(12));
    assertArrayEquals(new int[] {32, 64, 96, 128}, ShapeBuckets.multiplesOf(32, 128));
    assertArrayEquals(new int[] {16, 32, 64, 100}, ShapeBuckets.powersOfTwo(16, 100));
  }

  @Test
  void requestsPadUpToTheSmallestHoldingBucket() {
    ShapeBuckets b = ShapeBuckets.standard(64, 128);
    assertEquals(new Bucket(1, 32), b.bucketFor(1, 1));
    assertEquals(new Bucket(4, 64), b.bucketFor(3, 33));
    assertEquals(new Bucket(8, 128), b.bucketFor(5, 128));
    assertEquals(new Bucket(16, 32), b.bucketFor(9, 19));
    assertThrows(InvalidInputException.class, () -> b.bucketFor(65, 10));
    assertThrows(InvalidInputException.class, () -> b.bucketFor(1, 129));
    assertThrows(InvalidInputException.class, () -> b.bucketFor(0, 10));
  }

  /** A graph that counts launches and records its closing. */
  static final class FakeGraph implements ReplayableGraph {
    int launches;
    boolean closed;

    @Override
    public void launch() {
      assertFalse(closed, "launched a closed graph");
      launches++;
    }

    @Override
    public long memoryBytes() {
      return 1000;
    }

    @Override
    public void close() {
      closed = true;
    }
  }

  @Test
  void graphCacheCapturesOnceReplaysAndEvictsLeastRecentlyUsed() {
    List<FakeGraph> made = new ArrayList<>();
    int[] enqueues = {0};
    try (GraphCache<Bucket> cache = new GraphCache<>(2)) {
      Bucket a = new Bucket(1, 32);
      Bucket b = new Bucket(8, 32);
      Bucket c = new Bucket(8, 64);
      java.util.function.Supplier<ReplayableGraph> capture =
          () -> {
            FakeGraph g = new FakeGraph();
            made.add(g);
            return g;
          };
      cache.run(a, capture, () -> enqueues[0]++);
      cache.run(a, capture, () -> enqueues[0]++);
      cache.run(b, capture, () -> enqueues[0]++);
      cache.run(a, capture, () -> enqueues[0]++); // a is now most recent
      cache.run(c, capture, () -> enqueues[0]++); // evicts b
      assertEquals(3, made.size());
      assertTrue(made.get(1).closed, "least recently used graph was not evicted");
      assertFalse(made.get(0).closed);
      assertEquals(3, made.get(0).launches);
      GraphStats s = cache.stats();
      assertEquals(3, s.captures());
      assertEquals(5, s.replays());
      assertEquals(2, s.hits());
      assertEquals(3, s.misses());
      assertEquals(1, s.evictions());
      assertEquals(2, s.live());
      assertEquals(2000, s.graphMemoryBytes());
      assertEquals(0, enqueues[0]);
    }
  }

  @Test
  void failedCaptureFallsBackToEnqueueAndIsNotRetried() {
    int[] attempts = {0};
    int[] enqueues = {0};
    try (GraphCache<Bucket> cache = new GraphCache<>(4)) {
      Bucket a = new Bucket(2, 32);
      for (int i = 0; i < 3; i++) {
        cache.run(
            a,
            () -> {
              attempts[0]++;
              throw new io.kiln.BackendException("capture not supported");
            },
            () -> enqueues[0]++);
      }
      assertEquals(1, attempts[0]);
      assertEquals(3, enqueues[0]);
      assertEquals(3, cache.stats().fallbacks());
      assertEquals(0, cache.stats().replays());
    }
  }
}
