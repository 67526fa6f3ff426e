package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.model.onnx.Proto;
import io.kiln.model.onnx.TensorProtos;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;

/**
 * Observes intermediate float tensors: the tensors become extra graph outputs of a copy of the
 * model, which ONNX Runtime then runs over the calibration data.
 */
final class ActivationObserver implements AutoCloseable {
  private final OrtRunner runner;
  private final Set<String> inputs;
  private final Set<String> tensors;

  ActivationObserver(OnnxModel model, Collection<String> tensorNames, int threads) {
    OnnxModel observed = model.copy();
    if (observed.valueInfos().size()
        <= observed.inputNames().size() + observed.outputNames().size()) {
      observed.inferShapes();
    }
    Map<String, Proto> infos = observed.valueInfos();
    Set<String> outputs = new LinkedHashSet<>(observed.outputNames());
    inputs = new LinkedHashSet<>(observed.inputNames());
    tensors = new LinkedHashSet<>(tensorNames);
    for (String t : tensors) {
      if (outputs.contains(t) || inputs.contains(t)) {
        continue;
      }
      Proto vi = infos.get(t);
      int type = vi == null ? TensorProtos.FLOAT : OnnxModel.elemType(vi);
      observed.addOutput(OnnxModel.valueInfo(t, type == 0 ? TensorProtos.FLOAT : type));
    }
    runner = new OrtRunner(observed, threads);
  }

  /**
   * Runs every batch and hands each observed tensor's values to {@code sink}. Returns the number of
   * samples (rows of the first input). Closes the batches' tensors.
   */
  long observe(
      CalibrationData data,
      BiConsumer<String, OrtRunner.Output> sink,
      String pass,
      Progress progress) {
    long samples = 0;
    int batches = 0;
    Iterator<Map<String, Tensor>> it = data.batches();
    while (it.hasNext()) {
      Map<String, Tensor> feed = it.next();
      try {
        samples += feed.isEmpty() ? 0 : feed.values().iterator().next().shape()[0];
        Map<String, OrtRunner.Output> out = runner.run(feed);
        for (String t : tensors) {
          if (inputs.contains(t)) {
            Tensor in = feed.get(t);
            if (in != null && in.dtype().isFloatingPoint()) {
              sink.accept(t, new OrtRunner.Output(in.shape(), in.toFloatArray()));
            }
            continue;
          }
          OrtRunner.Output o = out.get(t);
          if (o != null) {
            sink.accept(t, o);
          }
        }
      } finally {
        feed.values().forEach(Tensor::close);
      }
      batches++;
      progress.update(pass, batches, samples);
    }
    if (batches == 0) {
      throw new InvalidInputException("calibration set is empty: " + data.description());
    }
    return samples;
  }

  @Override
  public void close() {
    runner.close();
  }
}
