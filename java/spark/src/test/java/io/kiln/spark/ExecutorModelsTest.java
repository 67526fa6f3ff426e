package io.kiln.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ExecutorModelsTest {
  @Test
  void oneInstancePerKeyClosedWhenTheExecutorStops() {
    AtomicInteger opened = new AtomicInteger();
    AtomicInteger closed = new AtomicInteger();
    ExecutorModels.ModelKey key =
        new ExecutorModels.ModelKey("test", "/models/x", "cpu", List.of("a"));
    AutoCloseable first =
        ExecutorModels.get(
            key, () -> opened.incrementAndGet() > 0 ? closed::incrementAndGet : null);
    AutoCloseable again = ExecutorModels.get(key, () -> closed::incrementAndGet);
    assertSame(first, again);
    assertEquals(1, opened.get());
    ExecutorModels.ModelKey other =
        new ExecutorModels.ModelKey("test", "/models/x", "cpu", List.of("b"));
    ExecutorModels.get(other, () -> closed::incrementAndGet);
    assertTrue(ExecutorModels.openCount() >= 2);

    new KilnSparkPlugin().executorPlugin().shutdown();
    assertEquals(2, closed.get(), "both models closed");
    assertEquals(0, ExecutorModels.openCount());
  }
}
