package io.kiln.execution.kv;

/** One block of the KV pool: who holds it, whether its contents are cached, its free-list links. */
final class KvBlock {
  final int id;
  int refCount;

  /**
   * Set while the block is full and registered in the prefix cache; its contents are then shared.
   */
  BlockHash hash;

  KvBlock prevFree;
  KvBlock nextFree;
  boolean inFreeQueue;

  KvBlock(int id) {
    this.id = id;
  }

  @Override
  public String toString() {
    return "KvBlock[" + id + ", ref=" + refCount + (hash != null ? ", cached" : "") + "]";
  }
}
