package io.kiln.engine;

import io.kiln.Precision;

/**
 * The form of graph an engine compiles for a precision: each engine provider names the one it
 * needs, and the precision pipeline makes it.
 *
 * @param precision the arithmetic
 * @param qdq INT8 only: the Q/DQ layout this engine runs fastest with, unless a session names its
 *     own quantization settings; null for FP32 and FP16
 * @param float16Form INT8 only: the float16 form of the Q/DQ graph, built strongly typed
 */
public record PrecisionGraph(Precision precision, QdqLayout qdq, boolean float16Form) {

  /**
   * Where an engine wants its INT8 Q/DQ pairs.
   *
   * @param unsignedActivations UINT8 activations (zero point 128) instead of INT8
   * @param weightedOnly quantize only MatMul/Gemm/Conv with a constant weight
   * @param sharedPairs one Q/DQ pair per activation tensor, shared by its readers, instead of one
   *     per reader
   */
  public record QdqLayout(boolean unsignedActivations, boolean weightedOnly, boolean sharedPairs) {
    /** Kiln's generic layout: INT8 activations, one pair per reader, every supported op. */
    public static QdqLayout defaults() {
      return new QdqLayout(false, false, false);
    }
  }

  public PrecisionGraph {
    if ((precision == Precision.INT8) != (qdq != null)) {
      throw new IllegalArgumentException("INT8 graphs, and only they, carry a Q/DQ layout");
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

  /** A Q/DQ graph with this layout, in float32 or in its float16 form. */
  public static PrecisionGraph int8(QdqLayout qdq, boolean float16Form) {
    return new PrecisionGraph(Precision.INT8, qdq, float16Form);
  }

  /** The graph of a precision with Kiln's generic defaults, for engines with no preference. */
  public static PrecisionGraph of(Precision precision) {
    return switch (precision) {
      case FP32 -> fp32();
      case FP16 -> fp16();
      case INT8 -> int8(QdqLayout.defaults(), false);
    };
  }
}
