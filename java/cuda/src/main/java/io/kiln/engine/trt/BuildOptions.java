package io.kiln.engine.trt;

import io.kiln.InvalidInputException;
import io.kiln.Precision;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * How to build an engine.
 *
 * @param precision FP32 (TF32 off), FP16 or INT8
 * @param stronglyTyped take every tensor's type from the ONNX graph (FP16 casts, Q/DQ) instead of
 *     letting precision flags choose
 * @param profiles optimization profiles; several are allowed
 * @param optLevel TensorRT builder optimization level, 0 to 5
 * @param workspaceMiB workspace pool limit; 0 keeps TensorRT's default (the device's memory)
 * @param timingCache file to read and update, or null for none
 * @param calibration calibration batches for the implicit INT8 path, or null
 * @param detailedLayers keep each layer's tactic, formats and fused ops in the plan, for {@link
 *     TrtEngine#layerInformation()}
 */
public record BuildOptions(
    Precision precision,
    boolean stronglyTyped,
    List<ShapeProfile> profiles,
    int optLevel,
    long workspaceMiB,
    Path timingCache,
    CalibrationBatches calibration,
    boolean detailedLayers) {

  public BuildOptions {
    profiles = List.copyOf(profiles);
    if (profiles.isEmpty()) {
      throw new InvalidInputException("at least one optimization profile is needed");
    }
    if (optLevel < 0 || optLevel > 5) {
      throw new InvalidInputException("optimization level must be 0..5, got " + optLevel);
    }
    if (workspaceMiB < 0) {
      throw new InvalidInputException("workspace must be >= 0 MiB");
    }
    if (stronglyTyped && calibration != null) {
      throw new InvalidInputException(
          "a strongly typed build takes INT8 from Q/DQ nodes in the graph; drop --calibration");
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Builder-flag names as recorded in the sidecar. */
  public List<String> flagNames() {
    List<String> f = new ArrayList<>();
    if (stronglyTyped) {
      f.add("STRONGLY_TYPED");
    } else {
      switch (precision) {
        case FP32 -> {}
        case FP16 -> f.add("FP16");
        case INT8 -> {
          f.add("FP16");
          f.add("INT8");
        }
      }
    }
    if (calibration != null) {
      f.add("CALIBRATOR_ENTROPY2");
    }
    if (detailedLayers) {
      f.add("DETAILED_LAYERS");
    }
    return f;
  }

  /** Fluent construction with defaults: FP16, one profile batch 1:8:32 seq 128, level 3. */
  public static final class Builder {
    private Precision precision = Precision.FP16;
    private boolean stronglyTyped;
    private final List<ShapeProfile> profiles = new ArrayList<>();
    private int optLevel = 3;
    private long workspaceMiB;
    private Path timingCache;
    private CalibrationBatches calibration;
    private boolean detailedLayers;

    public Builder precision(Precision p) {
      this.precision = p;
      return this;
    }

    public Builder stronglyTyped(boolean s) {
      this.stronglyTyped = s;
      return this;
    }

    public Builder profile(ShapeProfile p) {
      profiles.add(p);
      return this;
    }

    public Builder profiles(List<ShapeProfile> ps) {
      profiles.addAll(ps);
      return this;
    }

    public Builder optLevel(int level) {
      this.optLevel = level;
      return this;
    }

    public Builder workspaceMiB(long mib) {
      this.workspaceMiB = mib;
      return this;
    }

    public Builder timingCache(Path file) {
      this.timingCache = file;
      return this;
    }

    public Builder calibration(CalibrationBatches c) {
      this.calibration = c;
      return this;
    }

    public Builder detailedLayers(boolean detailed) {
      this.detailedLayers = detailed;
      return this;
    }

    public BuildOptions build() {
      List<ShapeProfile> ps =
          profiles.isEmpty() ? List.of(ShapeProfile.of("1:8:32", "128")) : profiles;
      return new BuildOptions(
          precision,
          stronglyTyped,
          ps,
          optLevel,
          workspaceMiB,
          timingCache,
          calibration,
          detailedLayers);
    }
  }
}
