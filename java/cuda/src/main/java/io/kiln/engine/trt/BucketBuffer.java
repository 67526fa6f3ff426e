package io.kiln.engine.trt;

import org.bytedeco.javacpp.Pointer;

/** Device buffer of one tensor at a bucket's shape, and pinned host staging for inputs. */
final class BucketBuffer {
  final IoTensor io;
  final long[] shape;
  final long bytes;
  final Pointer device = new Pointer();
  final Pointer host = new Pointer();

  BucketBuffer(IoTensor io, long[] shape) {
    this.io = io;
    this.shape = shape;
    this.bytes = Math.max(1, io.dtype().byteSize() * elements(shape));
  }

  static long elements(long[] shape) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    return n;
  }
}
