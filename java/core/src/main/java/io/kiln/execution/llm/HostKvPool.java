package io.kiln.execution.llm;

import io.kiln.InvalidInputException;

/**
 * A paged KV pool in host memory: per layer, K and V arrays laid out {@code
 * [block][slot][kvHead][headDim]}.
 */
final class HostKvPool {
  final KvPoolSpec spec;
  final int kvDim;
  final float[][] keys;
  final float[][] values;

  HostKvPool(KvPoolSpec spec, int numLayers, int kvDim) {
    if (spec.numBlocks() < 2 || spec.blockSize() < 1) {
      throw new InvalidInputException(
          "KV pool needs at least 2 blocks (block 0 is reserved) of at least 1 position, got "
              + spec);
    }
    long perLayer = (long) spec.numBlocks() * spec.blockSize() * kvDim;
    if (perLayer > Integer.MAX_VALUE - 8) {
      throw new InvalidInputException(
          "KV pool "
              + spec
              + " needs "
              + perLayer
              + " floats per layer, more than one host array holds");
    }
    this.spec = spec;
    this.kvDim = kvDim;
    this.keys = new float[numLayers][(int) perLayer];
    this.values = new float[numLayers][(int) perLayer];
  }

  /** Offset of a position's K (or V) vector through a sequence's block table. */
  int offset(int[] blockTable, int position) {
    int block = blockTable[position / spec.blockSize()];
    return (block * spec.blockSize() + position % spec.blockSize()) * kvDim;
  }

  /** Host pool of {@code bytes} at most for a model's K and V. */
  static KvPoolSpec sizedFor(ModelSpec m, long bytes, int blockSize) {
    long perBlock = 2L * m.numLayers() * blockSize * m.numKvHeads() * m.headDim() * Float.BYTES;
    long blocks = Math.max(2, bytes / perBlock);
    long maxBlocks = (Integer.MAX_VALUE - 8L) / ((long) blockSize * m.numKvHeads() * m.headDim());
    return new KvPoolSpec((int) Math.min(blocks, maxBlocks), blockSize);
  }
}
