package io.kiln.spark;

import io.kiln.execution.llm.SamplingParams;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;

/** Everything an executor needs to open the engine. */
record GeneratorSpec(
    String modelPath,
    int blockSize,
    int kvBlocks,
    String quantization,
    LlmWorker.CudaSettings cuda,
    SamplingParams sampling,
    ModelSettings settings)
    implements Serializable {

  LlmWorker worker() {
    return settings.openForTask(
        "llm",
        modelPath,
        List.of(
            Integer.toString(blockSize), Integer.toString(kvBlocks), quantization, cuda.toString()),
        on ->
            LlmWorker.open(
                Path.of(modelPath),
                on,
                settings.batchSize(),
                settings.threads(),
                blockSize,
                kvBlocks,
                quantization,
                cuda));
  }
}
