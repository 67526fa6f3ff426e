package io.kiln.execution.llm.gpu;

import io.kiln.cuda.Cuda;
import io.kiln.execution.llm.SequenceChunk;
import java.util.List;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.LongPointer;

/**
 * A step's traffic with the host, beside its {@link StepLayout}: the packed integer inputs go to
 * the device in one copy from pinned memory, and the logits (or only the greedy tokens) come back
 * the same way, all on the runner's stream.
 */
final class StepIo {
  final StepLayout layout;
  private final CUstream_st stream;
  private final DeviceBuffer meta;
  private final IntPointer hostMeta;
  private final FloatPointer hostLogits;
  private final DeviceBuffer greedy;
  private final IntPointer hostGreedy;
  private final LongPointer hostGreedyKeys;

  /** Allocates the step inputs and the host buffers for {@code vocab}-wide logits rows. */
  StepIo(StepLayout layout, int vocab, DeviceMemory memory, CUstream_st stream) {
    this.layout = layout;
    this.stream = stream;
    int maxRows = layout.maxLogitRows;
    meta = memory.alloc(4L * layout.data.length);
    hostMeta = new IntPointer(memory.pinnedHost(4L * layout.data.length));
    hostLogits = new FloatPointer(memory.pinnedHost(4L * maxRows * vocab));
    greedy = memory.alloc(4L * maxRows);
    hostGreedy = new IntPointer(memory.pinnedHost(4L * maxRows));
    hostGreedyKeys = new LongPointer(memory.pinnedHost(8L * maxRows));
  }

  /** Device address of the int at {@code intOffset} of the step inputs (a layout section). */
  long metaAt(int intOffset) {
    return meta.address(4L * intOffset);
  }

  /** Copies the used part of the layout's inputs to the device (asynchronously). */
  void uploadInputs() {
    int used = layout.used();
    hostMeta.position(0).put(layout.data, 0, used);
    Cuda.check(
        cudart.cudaMemcpyAsync(
            meta.pointer(), hostMeta, 4L * used, cudart.cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync step inputs");
  }

  /**
   * The logits rows of the step, by chunk (each chunk's rows end to end; null for chunks that want
   * none); waits for them.
   */
  float[][] downloadLogits(List<SequenceChunk> batch, DeviceBuffer logits, int vocab) {
    float[][] out = new float[batch.size()][];
    int[] filled = new int[batch.size()];
    int rows = layout.numLogitRows;
    if (rows > 0) {
      Cuda.check(
          cudart.cudaMemcpyAsync(
              hostLogits,
              logits.pointer(),
              4L * rows * vocab,
              cudart.cudaMemcpyDeviceToHost,
              stream),
          "cudaMemcpyAsync logits");
    }
    sync();
    for (int r = 0; r < rows; r++) {
      int chunk = layout.logitChunk[r];
      if (chunk < batch.size()) {
        if (out[chunk] == null) {
          out[chunk] = new float[batch.get(chunk).numLogits() * vocab];
        }
        hostLogits.position((long) r * vocab).get(out[chunk], filled[chunk]++ * vocab, vocab);
      }
    }
    hostLogits.position(0);
    return out;
  }

  /**
   * The greedy tokens of each chunk's logits rows (none for chunks that want no logits); waits for
   * them. With {@code fromKeys} the skinny LM head left them in the step's greedy keys; otherwise
   * the argmax kernel runs over {@code logits} first. Only ints travel back.
   */
  int[][] downloadGreedy(
      List<SequenceChunk> batch,
      boolean fromKeys,
      Kernels kernels,
      DeviceBuffer logits,
      int vocab) {
    int[][] tokens = new int[batch.size()][];
    int[] filled = new int[batch.size()];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = new int[batch.get(i).numLogits()];
    }
    int rows = layout.numLogitRows;
    if (fromKeys) {
      // The greedy keys lead the step inputs (StepLayout.greedyKeys() is 0).
      Cuda.check(
          cudart.cudaMemcpyAsync(
              hostGreedyKeys, meta.pointer(), 8L * rows, cudart.cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync greedy keys");
    } else if (rows > 0) {
      kernels.argmax(stream, rows, logits.address(), vocab, greedy.address());
      Cuda.check(
          cudart.cudaMemcpyAsync(
              hostGreedy, greedy.pointer(), 4L * rows, cudart.cudaMemcpyDeviceToHost, stream),
          "cudaMemcpyAsync tokens");
    }
    sync();
    for (int r = 0; r < rows; r++) {
      int chunk = layout.logitChunk[r];
      if (chunk < batch.size()) {
        tokens[chunk][filled[chunk]++] =
            fromKeys ? StepLayout.greedyToken(hostGreedyKeys.get(r)) : hostGreedy.get(r);
      }
    }
    return tokens;
  }

  private void sync() {
    Cuda.check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
}
