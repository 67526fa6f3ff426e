package io.kiln.execution.llm.gpu;

import io.kiln.model.llama.LlamaConfig;

/**
 * The activation buffers, sized for the most tokens and logits rows of a step: the fp32 residual
 * stream ({@code x} in the forward pass's comments), its norm in the storage type ({@code xb}), and
 * the products' outputs.
 */
final class Activations {
  final DeviceBuffer residual;
  final DeviceBuffer normed;
  final DeviceBuffer qkv;
  final DeviceBuffer att;
  final DeviceBuffer proj;
  final DeviceBuffer gateUp;
  final DeviceBuffer mlp;
  final DeviceBuffer lastX;
  final DeviceBuffer lastNormed;
  final DeviceBuffer logits;
  final DeviceBuffer partAcc;
  final DeviceBuffer partMl;

  /** Query rows times attention splits the partial buffers hold. */
  final long splitCapacity;

  Activations(
      LlamaConfig config,
      StorageType storage,
      int maxTokens,
      int maxRows,
      int maxLogitRows,
      DeviceMemory memory) {
    long hidden = config.hiddenSize();
    long tokens = maxTokens;
    long qkvDim = config.queryDim() + 2L * config.kvDim();
    long ff = config.intermediateSize();
    residual = memory.alloc(4 * tokens * hidden);
    normed = memory.alloc(tokens * hidden * storage.bytes);
    qkv = memory.alloc(tokens * qkvDim * storage.bytes);
    att = memory.alloc(tokens * config.queryDim() * storage.bytes);
    proj = memory.alloc(tokens * hidden * storage.bytes);
    gateUp = memory.alloc(tokens * 2 * ff * storage.bytes);
    mlp = memory.alloc(tokens * ff * storage.bytes);
    lastX = memory.alloc(4L * maxLogitRows * hidden);
    lastNormed = memory.alloc((long) maxLogitRows * hidden * storage.bytes);
    logits = memory.alloc(4L * maxLogitRows * config.vocabSize());
    splitCapacity = DecodeBuckets.splitCapacity(maxRows);
    long splitRows = splitCapacity * config.numHeads();
    partAcc = memory.alloc(4 * splitRows * config.headDim());
    partMl = memory.alloc(4 * splitRows * 2);
  }
}
