package io.kiln;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.execution.batching.BatcherStats;
import io.kiln.session.Session;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Concurrent {@link Session#infer} calls merged by the dynamic batcher, on the public BERT. */
class SessionConcurrentBatchingTest {
  private static final int THREADS = 6;
  private static final int ROUNDS = 8;
  private static BertReference ref;
  private static Session unbatched;

  @BeforeAll
  static void open() throws Exception {
    ref = BertReference.load();
    unbatched =
        Session.builder(ref.model())
            .device(Device.CPU)
            .intraOpThreads(1)
            .dynamicBatching(false)
            .build();
  }

  @AfterAll
  static void close() {
    if (unbatched != null) {
      unbatched.close();
    }
  }

  /** Fresh random tokens: {@code rows} rows of {@code length} positions, all valid. */
  private static Map<String, Tensor> randomRequest(Random rnd, int rows, int length) {
    long[] ids = new long[rows * length];
    long[] mask = new long[rows * length];
    long[] types = new long[rows * length];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = 100 + rnd.nextInt(900);
      mask[i] = 1;
      types[i] = rnd.nextInt(2);
    }
    Map<String, Tensor> m = new LinkedHashMap<>();
    m.put("input_ids", Tensor.of(ids, rows, length));
    m.put("attention_mask", Tensor.of(mask, rows, length));
    m.put("token_type_ids", Tensor.of(types, rows, length));
    return m;
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  @Test
  void concurrentCallersAreMergedAndEachGetsItsOwnRows() throws Exception {
    // Whether callers overlap depends on the scheduler: on a loaded machine one session's calls
    // can all run alone. Each attempt checks every row; attempts repeat until one merged.
    BatcherStats stats = null;
    for (int attempt = 0; attempt < 10 && !merged(stats); attempt++) {
      stats = concurrentRounds(new Random(System.nanoTime()));
    }
    assertTrue(stats.requests() > 0 && stats.requests() < THREADS * ROUNDS, stats.toString());
    assertTrue(merged(stats), "no merged run in 10 sessions: " + stats);
  }

  private static boolean merged(BatcherStats s) {
    return s != null && s.largestBatch() > 2 && s.batches() < s.requests();
  }

  /**
   * THREADS callers meet at a barrier before each of ROUNDS calls of different row counts and
   * lengths; every result must equal the unbatched run of the same request. Returns the batcher's
   * counters: calls that found no other in flight ran directly, the overlapping rest were batched.
   */
  private static BatcherStats concurrentRounds(Random rnd) throws Exception {
    List<List<Map<String, Tensor>>> requests = new ArrayList<>();
    for (int t = 0; t < THREADS; t++) {
      List<Map<String, Tensor>> mine = new ArrayList<>();
      for (int r = 0; r < ROUNDS; r++) {
        mine.add(randomRequest(rnd, 1 + rnd.nextInt(2), 4 + rnd.nextInt(20)));
      }
      requests.add(mine);
    }
    float[][][] batched = new float[THREADS][ROUNDS][];
    long[][][] shapes = new long[THREADS][ROUNDS][];
    BatcherStats stats;
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    // A generous wait: every round's callers meet at the barrier, so they overlap in infer.
    try (Session session =
        Session.builder(ref.model())
            .device(Device.CPU)
            .intraOpThreads(1)
            .maxBatchSize(16)
            .maxWaitMicros(200_000)
            .dynamicBatching(true)
            .build()) {
      CyclicBarrier barrier = new CyclicBarrier(THREADS);
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        int thread = t;
        futures.add(
            pool.submit(
                () -> {
                  for (int r = 0; r < ROUNDS; r++) {
                    barrier.await();
                    try (Session.Result out = session.infer(requests.get(thread).get(r))) {
                      Tensor h = out.get("last_hidden_state");
                      shapes[thread][r] = h.shape();
                      batched[thread][r] = h.toFloatArray();
                    }
                  }
                  return null;
                }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
      stats = session.concurrentBatchingStats();
    } finally {
      pool.shutdown();
    }
    try {
      for (int t = 0; t < THREADS; t++) {
        for (int r = 0; r < ROUNDS; r++) {
          Map<String, Tensor> in = requests.get(t).get(r);
          try (Session.Result alone = unbatched.infer(in)) {
            Tensor h = alone.get("last_hidden_state");
            assertArrayEquals(h.shape(), shapes[t][r], "thread " + t + " round " + r);
            double diff = maxAbsDiff(h.toFloatArray(), batched[t][r]);
            assertTrue(diff <= 1e-5, "thread " + t + " round " + r + ": max |diff| " + diff);
          }
        }
      }
    } finally {
      requests.forEach(l -> l.forEach(m -> m.values().forEach(Tensor::close)));
    }
    return stats;
  }

  @Test
  void aLoneCallerDoesNotWaitForMaxWait() {
    long maxWaitMicros = 50_000;
    Random rnd = new Random(7);
    try (Session session =
        Session.builder(ref.model()).device(Device.CPU).maxWaitMicros(maxWaitMicros).build()) {
      Map<String, Tensor> in = randomRequest(rnd, 2, 16);
      try {
        session.infer(in).close(); // warm-up
        int calls = 10;
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) {
          session.infer(in).close();
        }
        long elapsedMillis = (System.nanoTime() - t0) / 1_000_000;
        // Waiting for maxWait on each call would take at least calls * 50 ms = 500 ms.
        assertTrue(elapsedMillis < calls * maxWaitMicros / 1000 / 2, elapsedMillis + " ms");
        // With nobody else in flight, a call runs the engine on its own thread: the batcher never
        // sees it.
        assertEquals(0, session.concurrentBatchingStats().requests());
      } finally {
        in.values().forEach(Tensor::close);
      }
    }
  }

  @Test
  void turnedOffItRunsEachCallAlone() {
    Map<String, Tensor> in = randomRequest(new Random(3), 1, 8);
    try (Session.Result r = unbatched.infer(in)) {
      assertArrayEquals(new long[] {1, 8, BertReference.HIDDEN}, r.first().shape());
      assertEquals(0, unbatched.concurrentBatchingStats().requests());
    } finally {
      in.values().forEach(Tensor::close);
    }
  }
}
