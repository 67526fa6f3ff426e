package io.kiln.engine.ort;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.onnxruntime.OrtLoggingFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ONNX Runtime's own log, through SLF4J at WARN and above instead of coloured lines on stderr. Held
 * for the life of the process: ONNX Runtime keeps calling it from its threads.
 */
final class OrtLog extends OrtLoggingFunction {
  private static final Logger LOG = LoggerFactory.getLogger("io.kiln.onnxruntime");

  /** ONNX Runtime's severities: verbose, info, warning, error, fatal. */
  static final int WARNING = 2;

  @Override
  public void call(
      Pointer param,
      int severity,
      BytePointer category,
      BytePointer logId,
      BytePointer codeLocation,
      BytePointer message) {
    String text = message == null || message.isNull() ? "" : oneLine(message.getString());
    if (severity >= WARNING + 1) {
      LOG.error("onnxruntime: {}", text);
    } else if (severity == WARNING) {
      LOG.warn("onnxruntime: {}", text);
    } else {
      LOG.debug("onnxruntime: {}", text);
    }
  }

  static String oneLine(String text) {
    return text.strip().replaceAll("\\s*\\R\\s*", " | ");
  }
}
