package io.kiln.precision;

import io.kiln.Precision;

/**
 * The form of graph an engine compiles for a precision; each engine provider names the one it
 * needs, and {@link PrecisionPipeline} makes it.
 *
 * @param precision the arithmetic
 * @param quantization the INT8 settings this engine runs fastest with, unless the session's options
 *     name others; null for FP32 and FP16
 * @param float16Form INT8 only: the float16 form of the Q/DQ graph, built strongly typed
 */
public record PrecisionGraph(
    Precision precision, Quantizer.Options quantization, boolean float16Form) {

  public PrecisionGraph {
    if ((precision == Precision.INT8) != (quantization != null)) {
      throw new IllegalArgumentException("INT8 graphs, and only they, carry quantization options");
    }
    if (float16Form && precision != Precision.INT8) {
      throw new IllegalArgumentException("the float16 form is a form of an INT8 Q/DQ graph");
    }
  }

  public static PrecisionGraph fp32() {
    return new PrecisionGraph(Precision.FP32, null, false);
  }

  public static PrecisionGraph fp16() {
    return new PrecisionGraph(Precision.FP16, null, false);
  }

  /** A Q/DQ graph with these default settings, in float32 or in its float16 form. */
  public static PrecisionGraph int8(Quantizer.Options defaults, boolean float16Form) {
    return new PrecisionGraph(Precision.INT8, defaults, float16Form);
  }

  /** The graph of a precision with Kiln's generic defaults, for engines with no preference. */
  public static PrecisionGraph of(Precision precision) {
    return switch (precision) {
      case FP32 -> fp32();
      case FP16 -> fp16();
      case INT8 -> int8(Quantizer.Options.defaults(), false);
    };
  }
}
