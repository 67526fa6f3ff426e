package io.kiln.model.onnx;

import io.kiln.ModelException;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.onnx.ModelProto;
import org.bytedeco.onnx.global.onnx;

/**
 * The calls into the ONNX library. Callers pass bytes that {@link Proto} has already decoded, so
 * the native parser only ever sees well-formed protobuf.
 */
final class OnnxNative {
  private OnnxNative() {}

  static void check(byte[] model) {
    try (ModelProto m = parse(model)) {
      onnx.check_model(m);
    } catch (RuntimeException e) {
      if (e instanceof ModelException me) {
        throw me;
      }
      throw new ModelException("ONNX checker: " + firstLine(e.getMessage()), e);
    }
  }

  static byte[] inferShapes(byte[] model) {
    try (ModelProto m = parse(model)) {
      onnx.InferShapes(m);
      return serialize(m);
    } catch (RuntimeException e) {
      if (e instanceof ModelException me) {
        throw me;
      }
      throw new ModelException("ONNX shape inference: " + firstLine(e.getMessage()), e);
    }
  }

  static byte[] convertVersion(byte[] model, int target) {
    try (ModelProto m = parse(model);
        ModelProto converted = onnx.ConvertVersion(m, target)) {
      return serialize(converted);
    } catch (RuntimeException e) {
      if (e instanceof ModelException me) {
        throw me;
      }
      throw new ModelException(
          "ONNX version converter cannot reach opset " + target + ": " + firstLine(e.getMessage()),
          e);
    }
  }

  private static ModelProto parse(byte[] bytes) {
    ModelProto m = new ModelProto();
    try (BytePointer p = new BytePointer(bytes)) {
      if (!m.ParseFromArray(p, bytes.length)) {
        m.close();
        throw new ModelException("the ONNX library could not parse the model");
      }
    }
    return m;
  }

  private static byte[] serialize(ModelProto m) {
    long size = m.ByteSizeLong();
    if (size >= Integer.MAX_VALUE) {
      throw new ModelException("model is over 2 GiB");
    }
    try (BytePointer p = new BytePointer(size)) {
      if (!m.SerializeToArray(p, (int) size)) {
        throw new ModelException("the ONNX library could not serialize the model");
      }
      byte[] out = new byte[(int) size];
      p.get(out);
      return out;
    }
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "unknown error";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }
}
