package io.kiln.execution.llm.gpu;

import io.kiln.cuda.Cuda;
import io.kiln.execution.llm.KvPoolSpec;
import org.bytedeco.cuda.global.cudart;

/**
 * The paged KV cache in device memory: per layer K then V, each [numBlocks][blockSize][kvDim] in
 * the storage type, one allocation for all keys and one for all values. Zeroed when allocated:
 * padding rows read the null block, which must hold finite values.
 */
final class DeviceKvPool {
  private final DeviceMemory memory;
  private final int numLayers;
  private final int blockSize;
  private final int kvDim;
  private final StorageType storage;

  private DeviceBuffer keyCache;
  private DeviceBuffer valueCache;
  private long layerBytes;
  private KvPoolSpec spec;

  DeviceKvPool(DeviceMemory memory, int numLayers, int blockSize, int kvDim, StorageType storage) {
    this.memory = memory;
    this.numLayers = numLayers;
    this.blockSize = blockSize;
    this.kvDim = kvDim;
    this.storage = storage;
  }

  /** Bytes of K and V one block holds over all layers. */
  long bytesPerBlock() {
    return 2L * numLayers * blockSize * kvDim * storage.bytes;
  }

  /** Most blocks a layer's pool may hold so that element indexes stay within an int. */
  long maxBlocksByIndex() {
    return Integer.MAX_VALUE / ((long) blockSize * kvDim);
  }

  /** Allocates and zeroes a pool of {@code blocks} blocks. */
  void allocate(int blocks) {
    layerBytes = (long) blocks * blockSize * kvDim * storage.bytes;
    keyCache = memory.alloc(layerBytes * numLayers);
    valueCache = memory.alloc(layerBytes * numLayers);
    // Zero the pool: padding rows read the null block, which must hold finite values.
    Cuda.check(cudart.cudaMemset(keyCache.pointer(), 0, keyCache.bytes), "cudaMemset KV");
    Cuda.check(cudart.cudaMemset(valueCache.pointer(), 0, valueCache.bytes), "cudaMemset KV");
    spec = new KvPoolSpec(blocks, blockSize);
  }

  void free() {
    memory.free(keyCache);
    memory.free(valueCache);
    keyCache = null;
    valueCache = null;
  }

  /** Blocks and block size of the pool last allocated. */
  KvPoolSpec spec() {
    return spec;
  }

  /** Device address of {@code layer}'s keys. */
  long keys(int layer) {
    return keyCache.address(layer * layerBytes);
  }

  /** Device address of {@code layer}'s values. */
  long values(int layer) {
    return valueCache.address(layer * layerBytes);
  }
}
