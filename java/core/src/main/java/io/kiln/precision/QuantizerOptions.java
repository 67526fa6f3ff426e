package io.kiln.precision;

import io.kiln.InvalidInputException;
import java.util.Set;

/** Quantization settings; {@link #defaults()} then the {@code with...} methods. */
public record QuantizerOptions(
    CalibrationMethod method,
    double percentile,
    Set<String> excludeNodes,
    Set<String> excludeOpTypes,
    boolean keepFirstAndLast,
    boolean quantizeResidualAdd,
    ActivationType activationType,
    double smoothing,
    boolean weightedOnly,
    boolean sharedQdq,
    Set<String> unsmoothedNodes) {
  public QuantizerOptions {
    excludeNodes = Set.copyOf(excludeNodes);
    unsmoothedNodes = Set.copyOf(unsmoothedNodes);
    excludeOpTypes = Set.copyOf(excludeOpTypes);
    if (!(percentile > 0 && percentile <= 100)) {
      throw new InvalidInputException("percentile must be in (0, 100], got " + percentile);
    }
    if (!(smoothing >= 0 && smoothing < 1)) {
      throw new InvalidInputException("smoothing alpha must be in [0, 1), got " + smoothing);
    }
  }

  /**
   * Percentile 99.99 calibration, smoothing alpha 0.7, INT8 activations, residual Adds left in
   * float, nothing excluded.
   */
  public static QuantizerOptions defaults() {
    return new QuantizerOptions(
        CalibrationMethod.PERCENTILE,
        99.99,
        Set.of(),
        Set.of(),
        false,
        false,
        ActivationType.INT8,
        0.7,
        false,
        false,
        Set.of());
  }

  public QuantizerOptions withMethod(CalibrationMethod m) {
    return with(o -> o.method = m);
  }

  /**
   * Quantize only MatMul/Gemm/Conv with a constant weight, leaving products of two activations
   * (attention scores, attention-weighted values) in float so TensorRT keeps its fused attention.
   */
  public QuantizerOptions withWeightedOnly(boolean only) {
    return with(o -> o.weightedOnly = only);
  }

  /**
   * One Q/DQ pair per activation tensor, shared by every quantized reader, and one smoothing scale
   * per tensor: the layout TensorRT fuses into its producer and the readers' integer GEMMs. The
   * default, one pair per reading edge, is what ONNX Runtime folds into integer kernels.
   */
  public QuantizerOptions withSharedQdq(boolean shared) {
    return with(o -> o.sharedQdq = shared);
  }

  /**
   * Leaves the input of the named MatMuls unsmoothed (names; {@code *} matches within one {@code /}
   * segment, {@code **} across segments), still quantized: TensorRT can then fuse an activation and
   * its quantize into the GEMM that produces them, which a smoothing Mul in between prevents.
   */
  public QuantizerOptions withUnsmoothed(Set<String> nodeNames) {
    return with(o -> o.unsmoothedNodes = nodeNames);
  }

  public QuantizerOptions withPercentile(double p) {
    return with(o -> o.percentile = p);
  }

  /** Excludes nodes whose name or op type is listed. */
  public QuantizerOptions withExcluded(Set<String> names, Set<String> opTypes) {
    return with(
        o -> {
          o.excludeNodes = names;
          o.excludeOpTypes = opTypes;
        });
  }

  /** Keeps the first and the last MatMul/Gemm/Conv in float. */
  public QuantizerOptions withKeepFirstAndLast(boolean keep) {
    return with(o -> o.keepFirstAndLast = keep);
  }

  /** Also quantizes both inputs of residual Adds (the TensorRT fusion pattern). */
  public QuantizerOptions withResidualAdd(boolean quantize) {
    return with(o -> o.quantizeResidualAdd = quantize);
  }

  public QuantizerOptions withActivationType(ActivationType type) {
    return with(o -> o.activationType = type);
  }

  /** Smoothing strength alpha in [0, 1); 0 turns smoothing off. */
  public QuantizerOptions withSmoothing(double alpha) {
    return with(o -> o.smoothing = alpha);
  }

  private QuantizerOptions with(java.util.function.Consumer<Copy> change) {
    Copy c = new Copy(this);
    change.accept(c);
    return c.build();
  }

  /** A mutable copy, so that each wither names only what it changes. */
  private static final class Copy {
    CalibrationMethod method;
    double percentile;
    Set<String> excludeNodes;
    Set<String> excludeOpTypes;
    boolean keepFirstAndLast;
    boolean quantizeResidualAdd;
    ActivationType activationType;
    double smoothing;
    boolean weightedOnly;
    boolean sharedQdq;
    Set<String> unsmoothedNodes;

    Copy(QuantizerOptions o) {
      method = o.method;
      percentile = o.percentile;
      excludeNodes = o.excludeNodes;
      excludeOpTypes = o.excludeOpTypes;
      keepFirstAndLast = o.keepFirstAndLast;
      quantizeResidualAdd = o.quantizeResidualAdd;
      activationType = o.activationType;
      smoothing = o.smoothing;
      weightedOnly = o.weightedOnly;
      sharedQdq = o.sharedQdq;
      unsmoothedNodes = o.unsmoothedNodes;
    }

    QuantizerOptions build() {
      return new QuantizerOptions(
          method,
          percentile,
          excludeNodes,
          excludeOpTypes,
          keepFirstAndLast,
          quantizeResidualAdd,
          activationType,
          smoothing,
          weightedOnly,
          sharedQdq,
          unsmoothedNodes);
    }
  }

  /** A stable text of every setting, for cache keys. */
  public String key() {
    return String.join(
        "|",
        method.id(),
        Double.toString(percentile),
        new java.util.TreeSet<>(excludeNodes).toString(),
        new java.util.TreeSet<>(excludeOpTypes).toString(),
        Boolean.toString(keepFirstAndLast),
        Boolean.toString(quantizeResidualAdd),
        activationType.name(),
        Double.toString(smoothing),
        "weightedOnly=" + weightedOnly,
        "sharedQdq=" + sharedQdq,
        "unsmoothed=" + new java.util.TreeSet<>(unsmoothedNodes));
  }
}
