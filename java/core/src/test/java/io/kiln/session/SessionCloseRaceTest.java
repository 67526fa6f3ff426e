package io.kiln.session;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BertReference;
import io.kiln.ClosedException;
import io.kiln.Device;
import io.kiln.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link Session#close()} while 8 threads are inside {@link Session#infer}: never a crash, and
 * every call either returns the reference's result or throws {@link ClosedException}.
 */
class SessionCloseRaceTest {
  private static final int THREADS = 8;
  private static final int ROUNDS = 100;

  @ParameterizedTest(name = "dynamic batching {0}")
  @ValueSource(booleans = {true, false})
  void closeWhileCallsAreInside(boolean dynamicBatching) throws Exception {
    BertReference ref = BertReference.load();
    Random rnd = new Random(System.nanoTime());
    AtomicLong answered = new AtomicLong();
    AtomicLong refused = new AtomicLong();
    ConcurrentLinkedQueue<Throwable> wrong = new ConcurrentLinkedQueue<>();
    for (int round = 0; round < ROUNDS; round++) {
      Session session =
          Session.builder(ref.model())
              .device(Device.CPU)
              .intraOpThreads(1)
              .dynamicBatching(dynamicBatching)
              .build();
      CountDownLatch started = new CountDownLatch(THREADS);
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < THREADS; t++) {
        int row = (round + t) % ref.rows();
        Thread thread =
            new Thread(() -> callUntilClosed(session, ref, row, started, answered, refused, wrong));
        threads.add(thread);
        thread.start();
      }
      started.await();
      Thread.sleep(rnd.nextInt(3));
      session.close();
      for (Thread thread : threads) {
        thread.join(60_000);
        assertTrue(!thread.isAlive(), "a caller hangs after close");
      }
      assertTrue(wrong.isEmpty(), "round " + round + ": " + wrong);
      Map<String, Tensor> after = ref.row(0);
      try {
        assertThrows(ClosedException.class, () -> session.infer(after));
      } finally {
        after.values().forEach(Tensor::close);
      }
      session.close(); // a second close is a no-op
    }
    assertEquals(THREADS * ROUNDS, refused.get(), "every caller ends on ClosedException");
    assertTrue(answered.get() > 0, "no call finished before close in " + ROUNDS + " rounds");
  }

  /** Calls infer on row {@code row} until the session refuses; checks every answer. */
  private static void callUntilClosed(
      Session session,
      BertReference ref,
      int row,
      CountDownLatch started,
      AtomicLong answered,
      AtomicLong refused,
      ConcurrentLinkedQueue<Throwable> wrong) {
    Map<String, Tensor> inputs = ref.row(row);
    started.countDown();
    try {
      while (true) {
        try (Session.Result result = session.infer(inputs)) {
          float[] hidden = result.get("last_hidden_state").toFloatArray();
          double error = ref.maxErrorRow(row, hidden, ref.validLength(row));
          if (!(error < 1e-3)) {
            wrong.add(new AssertionError("row " + row + " off by " + error));
          }
          answered.incrementAndGet();
        } catch (ClosedException e) {
          refused.incrementAndGet();
          return;
        }
      }
    } catch (Throwable t) {
      wrong.add(t);
    } finally {
      inputs.values().forEach(Tensor::close);
    }
  }
}
