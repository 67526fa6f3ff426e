package io.kiln;

/** A native backend (ONNX Runtime, TensorRT, CUDA) reported a failure. */
public class BackendException extends KilnException {
  private static final long serialVersionUID = 1L;

  public BackendException(String message) {
    super(message);
  }

  public BackendException(String message, Throwable cause) {
    super(message, cause);
  }
}
