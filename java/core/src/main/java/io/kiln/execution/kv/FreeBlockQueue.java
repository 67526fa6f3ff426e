package io.kiln.execution.kv;

import java.util.ArrayList;
import java.util.List;

/**
 * Free blocks in least-recently-used order, as an intrusive doubly linked list so that taking a
 * cached block back out of the middle (a prefix-cache hit) is O(1). Allocation takes the front.
 */
final class FreeBlockQueue {
  private final KvBlock head = new KvBlock(-1);
  private final KvBlock tail = new KvBlock(-1);
  private int size;

  FreeBlockQueue() {
    head.nextFree = tail;
    tail.prevFree = head;
  }

  int size() {
    return size;
  }

  /** Removes and returns the least recently freed block. */
  KvBlock popFront() {
    if (size == 0) {
      throw new IllegalStateException("no free KV blocks");
    }
    KvBlock block = head.nextFree;
    remove(block);
    return block;
  }

  void append(KvBlock block) {
    if (block.inFreeQueue) {
      throw new IllegalStateException(block + " is already free");
    }
    KvBlock last = tail.prevFree;
    last.nextFree = block;
    block.prevFree = last;
    block.nextFree = tail;
    tail.prevFree = block;
    block.inFreeQueue = true;
    size++;
  }

  void remove(KvBlock block) {
    if (!block.inFreeQueue) {
      throw new IllegalStateException(block + " is not free");
    }
    block.prevFree.nextFree = block.nextFree;
    block.nextFree.prevFree = block.prevFree;
    block.prevFree = null;
    block.nextFree = null;
    block.inFreeQueue = false;
    size--;
  }

  /** Block ids from the next to be evicted to the last; O(n), for checks and reports. */
  List<Integer> ids() {
    List<Integer> ids = new ArrayList<>(size);
    for (KvBlock b = head.nextFree; b != tail; b = b.nextFree) {
      ids.add(b.id);
    }
    return ids;
  }
}
