package io.kiln.execution.llm;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;

/** Runs the ONNX checker with full shape inference on a model file. */
final class OnnxModelCheck {
  private OnnxModelCheck() {}

  static void assertValid(Path model) {
    try {
      org.bytedeco.onnx.global.onnx.check_model(model.toString(), true, false, false);
    } catch (RuntimeException e) {
      fail("ONNX checker rejects " + model + ": " + e.getMessage(), e);
    }
  }
}
