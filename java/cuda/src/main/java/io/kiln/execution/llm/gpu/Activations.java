package io.kiln.execution.llm.gpu;

import io.kiln.model.llama.LlamaConfig;

/** The activation buffers, sized for the most tokens and logits rows of a step. */
final class Activations {
  final DeviceBuffer x;
  final DeviceBuffer xb;
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

  Activations(
      LlamaConfig config, StorageType storage, int maxTokens, int maxRows, DeviceMemory memory) {
    long h = config.hiddenSize();
    long t = maxTokens;
    long qkvDim = config.queryDim() + 2L * config.kvDim();
    long ff = config.intermediateSize();
    x = memory.alloc(4 * t * h);
    xb = memory.alloc(t * h * storage.bytes);
    qkv = memory.alloc(t * qkvDim * storage.bytes);
    att = memory.alloc(t * config.queryDim() * storage.bytes);
    proj = memory.alloc(t * h * storage.bytes);
    gateUp = memory.alloc(t * 2 * ff * storage.bytes);
    mlp = memory.alloc(t * ff * storage.bytes);
    lastX = memory.alloc(4L * maxRows * h);
    lastNormed = memory.alloc(maxRows * h * storage.bytes);
    logits = memory.alloc(4L * maxRows * config.vocabSize());
    long splitRows = (long) maxRows * config.numHeads() * ForwardPass.MAX_SPLITS;
    partAcc = memory.alloc(4 * splitRows * config.headDim());
    partMl = memory.alloc(4 * splitRows * 2);
  }
}
