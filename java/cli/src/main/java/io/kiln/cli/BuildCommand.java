package io.kiln.cli;

import io.kiln.Precision;
import io.kiln.engine.trt.BuildOptions;
import io.kiln.engine.trt.CalibrationBatches;
import io.kiln.engine.trt.DimRange;
import io.kiln.engine.trt.EngineMetadata;
import io.kiln.engine.trt.RuntimeOptions;
import io.kiln.engine.trt.ShapeProfile;
import io.kiln.engine.trt.TrtEngine;
import io.kiln.engine.trt.TrtEngineBuilder;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.CalibrationSources;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln build}: compiles an ONNX model into a TensorRT plan with a JSON sidecar. */
@Command(
    name = "build",
    mixinStandardHelpOptions = true,
    description = {
      "Builds a TensorRT engine plan from an ONNX model, with a JSON sidecar beside it.",
      "--batch and --seq take comma lists of MIN:OPT:MAX (or N); one optimization profile is made"
          + " per (batch, seq) pair, so '--batch 1,8,32 --seq 128' gives three static profiles,"
          + " one per CUDA-graph bucket."
    })
public final class BuildCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MODEL", description = "ONNX model file")
  Path model;

  @Option(
      names = "--precision",
      defaultValue = "fp16",
      description = "fp32 | fp16 | int8 (default ${DEFAULT-VALUE})")
  String precision;

  @Option(
      names = "--strongly-typed",
      description = "take types from the graph (FP16 casts, Q/DQ nodes) instead of precision flags")
  boolean stronglyTyped;

  @Option(
      names = "--calibration",
      paramLabel = "DIR|random:N|texts:FILE",
      description =
          "calibration data for the implicit INT8 path (entropy calibrator), as for kiln quantize;"
              + " every sample must have the same shape")
  String calibration;

  @Option(
      names = "--tokenizer",
      paramLabel = "TOKENIZER.json",
      description = "for texts: data (default: the embedded all-MiniLM-L6-v2 tokenizer)")
  Path tokenizer;

  @Option(
      names = "--calibration-cache",
      paramLabel = "FILE",
      description = "calibration table to reuse and update")
  Path calibrationCache;

  @Option(
      names = "--batch",
      defaultValue = "1:8:32",
      description = "batch ranges (default ${DEFAULT-VALUE})")
  String batch;

  @Option(
      names = "--seq",
      defaultValue = "1:128:128",
      description = "sequence ranges (default ${DEFAULT-VALUE})")
  String seq;

  @Option(
      names = "--opt-level",
      defaultValue = "3",
      description = "builder optimization level 0-5 (default ${DEFAULT-VALUE})")
  int optLevel;

  @Option(
      names = "--workspace",
      paramLabel = "MiB",
      defaultValue = "0",
      description = "workspace limit in MiB, 0 = TensorRT default")
  long workspaceMiB;

  @Option(
      names = "--timing-cache",
      paramLabel = "FILE",
      description = "timing cache to reuse and update")
  Path timingCache;

  @Option(
      names = "--detailed-layers",
      description =
          "keep each layer's kernel, formats and fused ops in the plan and write them beside it"
              + " as ENGINE.plan.layers.json")
  boolean detailedLayers;

  @Option(
      names = {"-o", "--output"},
      required = true,
      paramLabel = "ENGINE.plan",
      description = "plan file to write")
  Path output;

  /** Seconds the last build took (for callers that run the command in-process). */
  double lastBuildSeconds;

  static List<ShapeProfile> profiles(String batches, String seqs) {
    List<ShapeProfile> out = new ArrayList<>();
    for (String b : batches.split(",")) {
      for (String s : seqs.split(",")) {
        out.add(new ShapeProfile(DimRange.parse(b), DimRange.parse(s)));
      }
    }
    return out;
  }

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    OptionRanges.between(spec, "--opt-level", optLevel, 0, 5);
    OptionRanges.between(spec, "--workspace", workspaceMiB, 0, 1L << 30);
    try (CalibrationBatches batches = calibration == null ? null : readCalibration()) {
      BuildOptions options =
          BuildOptions.builder()
              .precision(Precision.parse(precision))
              .stronglyTyped(stronglyTyped)
              .profiles(profiles(batch, seq))
              .optLevel(optLevel)
              .workspaceMiB(workspaceMiB)
              .timingCache(timingCache)
              .calibration(batches)
              .detailedLayers(detailedLayers)
              .build();
      long t0 = System.nanoTime();
      TrtEngineBuilder.Result r =
          new TrtEngineBuilder(System.err::println).buildTo(ModelSource.of(model), options, output);
      lastBuildSeconds = (System.nanoTime() - t0) / 1e9;
      if (detailedLayers) {
        Path layers = Path.of(output + ".layers.json");
        try (TrtEngine engine = TrtEngine.load(output, RuntimeOptions.defaults())) {
          Files.writeString(layers, engine.layerInformation());
        } catch (IOException e) {
          throw new UncheckedIOException("cannot write " + layers, e);
        }
        System.out.println("wrote " + layers);
      }
      EngineMetadata m = r.metadata();
      System.out.printf(
          "wrote %s (%.1f MiB) and %s%n  %s on %s (sm %s), TensorRT %s, CUDA %s, %d profile(s), built in %.1f s%n",
          output,
          m.planBytes() / 1048576.0,
          EngineMetadata.sidecarOf(output).getFileName(),
          m.precision() + (m.stronglyTyped() ? " strongly typed" : " " + m.flags()),
          m.gpuName(),
          m.computeCapability(),
          m.tensorrtVersion(),
          m.cudaVersion(),
          m.profiles().size(),
          m.buildSeconds());
      return ExitCodes.OK;
    }
  }

  private CalibrationBatches readCalibration() {
    Path cache = calibrationCache != null ? calibrationCache : Path.of(output + ".calib");
    // random:N and texts: need the graph (input shapes, names); a large model is not parsed
    // otherwise.
    boolean texts = calibration.startsWith("texts:");
    OnnxModel graph = calibration.startsWith("random:") || texts ? OnnxModel.load(model) : null;
    Path tok = !texts ? null : tokenizer != null ? tokenizer : QuantizeCommand.defaultTokenizer();
    return CalibrationBatches.collect(CalibrationSources.parse(calibration, graph, tok), cache);
  }
}
