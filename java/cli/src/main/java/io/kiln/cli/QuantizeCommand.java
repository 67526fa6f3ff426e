package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.Precision;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.engine.PrecisionGraph;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.AccuracyReport;
import io.kiln.precision.ActivationType;
import io.kiln.precision.CalibrationMethod;
import io.kiln.precision.CalibrationSources;
import io.kiln.precision.Fp16Converter;
import io.kiln.precision.PrecisionOptions;
import io.kiln.precision.PrecisionPipeline;
import io.kiln.precision.Progress;
import io.kiln.precision.QuantizerOptions;
import io.kiln.util.ProgressBar;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code kiln quantize MODEL --precision fp16|int8 -o OUT.onnx}: writes an FP16 or Q/DQ graph. */
@Command(
    name = "quantize",
    description =
        "Convert an ONNX model to FP16, or calibrate and quantize it to INT8 with explicit"
            + " QuantizeLinear/DequantizeLinear pairs; prints an accuracy report against FP32.")
final class QuantizeCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MODEL", description = "FP32 ONNX model")
  Path model;

  @Option(names = "--precision", required = true, description = "fp16 or int8")
  Precision precision;

  @Option(
      names = {"-o", "--output"},
      required = true,
      paramLabel = "OUT.onnx",
      description = "where to write the converted model")
  Path output;

  @Option(
      names = "--calibration",
      paramLabel = "DIR|random:N|texts:FILE",
      description =
          "calibration data: a directory of kiln-run input files (*.json, or folders of"
              + " NAME.npy), random:N, or texts:FILE (one sentence per line)")
  String calibration;

  @Option(
      names = "--method",
      description = "max, percentile, entropy or mse (default: ${DEFAULT-VALUE})",
      defaultValue = "percentile")
  String method;

  @Option(
      names = "--percentile",
      description = "percentile of |x| for --method percentile (default: ${DEFAULT-VALUE})",
      defaultValue = "99.99")
  double percentile;

  @Option(
      names = "--cache",
      paramLabel = "FILE",
      description =
          "calibration cache: reused when it exists (no data needed), written after calibrating")
  Path cache;

  @Option(
      names = "--exclude",
      split = ",",
      paramLabel = "NAME|OP",
      description = "node names or op types to leave in float (INT8) or float32 (FP16)")
  List<String> exclude = List.of();

  @Option(names = "--keep-first-last", description = "leave the first and last MatMul/Gemm/Conv")
  boolean keepFirstLast;

  @Option(names = "--residual-add", description = "also quantize residual Add inputs")
  boolean residualAdd;

  @Option(
      names = "--weighted-only",
      description =
          "quantize only MatMul/Gemm/Conv with a constant weight (TensorRT keeps fused attention)")
  boolean weightedOnly;

  @Option(
      names = "--shared-qdq",
      description =
          "one Q/DQ pair and one smoothing scale per activation tensor, shared by its readers"
              + " (the layout TensorRT fuses; ONNX Runtime's integer kernels want one per reader)")
  boolean sharedQdq;

  @Option(
      names = "--unsmoothed",
      split = ",",
      paramLabel = "NODE",
      description =
          "MatMuls (names; * matches within a /-segment, ** across) whose input is quantized without"
              + " smoothing, so TensorRT can fuse the activation before it into the GEMM")
  List<String> unsmoothed = List.of();

  @Option(
      names = "--float16",
      description =
          "INT8: write the float16 form of the Q/DQ graph (opset 19, float32 inputs and outputs"
              + " kept), for kiln build --strongly-typed")
  boolean float16;

  @Option(
      names = "--activations",
      description =
          "int8 (zero point 0; TensorRT) or uint8 (zero point 128, the same grid; fastest on"
              + " ONNX Runtime CPU) (default: ${DEFAULT-VALUE})",
      defaultValue = "int8")
  ActivationType activations;

  @Option(
      names = "--smoothing",
      description = "activation smoothing alpha, 0 = off (default: ${DEFAULT-VALUE})",
      defaultValue = "0.7")
  double smoothing;

  @Option(
      names = "--fp16-auto",
      paramLabel = "BOUND",
      arity = "0..1",
      fallbackValue = "1e4",
      description =
          "FP16: keep float32 the nodes whose activations exceed BOUND (default 1e4) on the"
              + " calibration data")
  Float fp16Auto;

  @Option(names = "--tokenizer", paramLabel = "TOKENIZER.json", description = "for texts: data")
  Path tokenizer;

  @Option(
      names = "--held-out",
      paramLabel = "DIR|random:N|texts:FILE",
      description = "inputs for the accuracy report (default: ${DEFAULT-VALUE})",
      defaultValue = "random:4")
  String heldOut;

  @Option(names = "--external-data", description = "store tensors in OUT.onnx.data")
  boolean externalData;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    PrintStream err = System.err;
    PrintWriter out = spec.commandLine().getOut();
    if (float16 && precision != Precision.INT8) {
      throw new InvalidInputException("--float16 is for --precision int8; FP16 graphs are float16");
    }
    OptionRanges.between(spec, "--percentile", percentile, 50.0, 100.0);
    OptionRanges.between(spec, "--smoothing", smoothing, 0.0, 1.0);
    if (precision == Precision.FP32) {
      throw new InvalidInputException("--precision must be fp16 or int8; the model is fp32");
    }
    boolean cached = cache != null && Files.isRegularFile(cache);
    if (calibration == null && (fp16Auto != null || (precision == Precision.INT8 && !cached))) {
      throw new InvalidInputException("--calibration DIR|random:N|texts:FILE is required here");
    }
    err.println("loading " + model);
    OnnxModel fp32 = OnnxModel.load(model);
    Path tok = tokenizer != null ? tokenizer : defaultTokenizer();
    Set<String> excluded = new HashSet<>(exclude);
    PrecisionOptions options =
        PrecisionOptions.defaults()
            .withCalibration(calibration)
            .withTokenizer(tok)
            .withCalibrationCache(cache);
    PrecisionGraph graph;
    if (precision == Precision.FP16) {
      Fp16Converter.Options f = Fp16Converter.Options.defaults();
      Set<String> ops = new HashSet<>(f.fp32Ops());
      ops.addAll(excluded);
      options = options.withFp16(f.withFp32Nodes(excluded).withFp32Ops(ops));
      if (fp16Auto != null) {
        options = options.withFp16Auto(fp16Auto);
      }
      graph = PrecisionGraph.fp16();
    } else {
      options =
          options.withQuantization(
              QuantizerOptions.defaults()
                  .withMethod(CalibrationMethod.parse(method))
                  .withPercentile(percentile)
                  .withExcluded(excluded, excluded)
                  .withKeepFirstAndLast(keepFirstLast)
                  .withResidualAdd(residualAdd)
                  .withWeightedOnly(weightedOnly)
                  .withSharedQdq(sharedQdq)
                  .withUnsmoothed(new HashSet<>(unsmoothed))
                  .withActivationType(activations)
                  .withSmoothing(smoothing));
      graph = PrecisionGraph.int8(PrecisionGraph.QdqLayout.defaults(), float16);
    }
    String sha = ModelSource.of(model).sha256();
    ProgressBar progress = ProgressBar.unbounded(err);
    OnnxModel converted =
        PrecisionPipeline.convert(fp32, sha, graph, options, Progress.to(progress));
    progress.finish();
    converted.check();
    converted.save(output, externalData || !converted.fitsInMemory());
    err.println("wrote " + output);
    err.println("accuracy against FP32 on " + heldOut + ":");
    AccuracyReport report =
        AccuracyReport.compare(
            fp32, converted, CalibrationSources.parse(heldOut, fp32, tok, 99), 0);
    out.print(report.toTable());
    out.flush();
    return ExitCodes.OK;
  }

  /** The embedded MiniLM tokenizer, written to a temp file for texts: data. */
  static Path defaultTokenizer() {
    String r = DefaultEmbeddingModel.get().tokenizerResource().substring(1);
    try (InputStream in = QuantizeCommand.class.getClassLoader().getResourceAsStream(r)) {
      if (in == null) {
        return null;
      }
      Path tmp = Files.createTempFile("kiln-tokenizer", ".json");
      tmp.toFile().deleteOnExit();
      Files.write(tmp, in.readAllBytes());
      return tmp;
    } catch (IOException e) {
      return null;
    }
  }
}
