package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.Test;

class PinnedPoolTest {
  private final List<Pointer> freed = new ArrayList<>();

  private PinnedPool pool(int keepPerSize, long maxIdleBytes) {
    return new PinnedPool(
        BytePointer::new,
        p -> {
          freed.add(p);
          p.deallocate();
        },
        keepPerSize,
        maxIdleBytes);
  }

  @Test
  void aSteadyStreamOfRunsAllocatesOnlyOnce() {
    try (PinnedPool pool = pool(2, 1 << 20)) {
      for (int i = 0; i < 100; i++) {
        Pointer p = pool.acquire(4096);
        pool.release(p, 4096);
      }
      assertEquals(1, pool.allocations());
      assertEquals(1, pool.idleCount());
    }
    assertEquals(1, freed.size(), "close frees the idle buffer");
  }

  @Test
  void heldBuffersAreNeverHandedOutTwice() {
    try (PinnedPool pool = pool(4, 1 << 20)) {
      Pointer a = pool.acquire(64);
      Pointer b = pool.acquire(64);
      assertNotEquals(a.address(), b.address());
      pool.release(a, 64);
      assertEquals(a.address(), pool.acquire(64).address());
      assertEquals(2, pool.allocations());
    }
  }

  @Test
  void idleBuffersAreCappedPerSizeAndInBytes() {
    PinnedPool pool = pool(2, 300);
    List<Pointer> held = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      held.add(pool.acquire(100));
    }
    held.forEach(p -> pool.release(p, 100));
    assertEquals(2, pool.idleCount(), "a third idle buffer of one size is freed");
    assertEquals(1, freed.size());
    Pointer big = pool.acquire(200);
    pool.release(big, 200);
    assertEquals(2, pool.idleCount(), "200 more bytes would pass the 300-byte cap");
    assertEquals(2, freed.size());
    pool.close();
    assertEquals(4, freed.size());
  }

  @Test
  void buffersComingBackAfterCloseAreFreed() {
    PinnedPool pool = pool(4, 1 << 20);
    Pointer p = pool.acquire(32);
    pool.close();
    pool.release(p, 32);
    assertEquals(List.of(p), freed);
    assertEquals(0, pool.idleCount());
  }
}
