package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.Precision;
import io.kiln.engine.PrecisionGraph;
import io.kiln.model.ModelSource;
import io.kiln.model.onnx.OnnxModel;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one call a session makes to get its model in the requested precision. The transformed graph
 * is cached on disk under {@code cacheDir/precision}, keyed by the model's sha256 and every option,
 * so only the first session pays for calibration.
 */
public final class PrecisionPipeline {
  private static final Logger LOG = LoggerFactory.getLogger(PrecisionPipeline.class);

  private PrecisionPipeline() {}

  /**
   * The model in the form {@code graph}, from the cache when there. FP32 returns the source.
   *
   * @param graph the form the engine needs, from its provider
   */
  public static ModelSource apply(
      ModelSource source, PrecisionGraph graph, PrecisionOptions options, Path cacheDir) {
    if (graph.precision() == Precision.FP32) {
      return source;
    }
    PrecisionOptions o = options == null ? PrecisionOptions.defaults() : options;
    String key = cacheKey(source, graph, o);
    Path file = cacheDir.resolve("precision").resolve(key + ".onnx");
    if (Files.isRegularFile(file)) {
      LOG.info("using cached {} graph {}", graph.precision(), file);
      return ModelSource.of(file);
    }
    OnnxModel converted = convert(OnnxModel.of(source), source.sha256(), graph, o, Progress.NONE);
    try {
      Files.createDirectories(file.getParent());
      if (converted.fitsInMemory()) {
        // Written beside and renamed, so a concurrent session never reads half a file.
        Path tmp = Files.createTempFile(file.getParent(), key, ".tmp");
        Files.write(tmp, converted.toBytes());
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      } else {
        converted.save(file, true);
      }
    } catch (IOException e) {
      throw new KilnException("cannot store converted model in " + file + ": " + e, e);
    }
    LOG.info("{} graph of {} cached as {}", graph.precision(), source.name(), file);
    return ModelSource.of(file);
  }

  /**
   * Converts {@code model} (whose bytes hash to {@code sha256}) to {@code graph}, uncached: the one
   * conversion path of sessions and {@code kiln quantize}.
   */
  public static OnnxModel convert(
      OnnxModel model,
      String sha256,
      PrecisionGraph graph,
      PrecisionOptions options,
      Progress progress) {
    PrecisionOptions o = options == null ? PrecisionOptions.defaults() : options;
    OnnxModel converted =
        switch (graph.precision()) {
          case FP32 -> model;
          case FP16 -> convertFp16(model, o, progress);
          case INT8 -> quantizeInt8(model, sha256, o, quantization(graph, o), progress);
        };
    if (graph.float16Form()) {
      Float16Qdq.Result half = Float16Qdq.convert(converted);
      half.clamps().forEach(c -> LOG.info("float16: {}", c));
      converted = half.model();
    }
    return converted;
  }

  /** The session's own INT8 settings when it names them, else the engine's layout. */
  static QuantizerOptions quantization(PrecisionGraph graph, PrecisionOptions o) {
    if (o.quantization() != null) {
      return o.quantization();
    }
    PrecisionGraph.QdqLayout qdq = graph.qdq();
    return QuantizerOptions.defaults()
        .withActivationType(qdq.unsignedActivations() ? ActivationType.UINT8 : ActivationType.INT8)
        .withWeightedOnly(qdq.weightedOnly())
        .withSharedQdq(qdq.sharedPairs());
  }

  static OnnxModel convertFp16(OnnxModel model, PrecisionOptions o, Progress progress) {
    Fp16Converter.Options f = o.fp16();
    if (!Float.isNaN(o.fp16AutoBound())) {
      Set<String> hot =
          Fp16Converter.nodesBeyond(model, calibrationData(model, o), o.fp16AutoBound(), progress);
      Set<String> keep = new java.util.HashSet<>(f.fp32Nodes());
      keep.addAll(hot);
      f = f.withFp32Nodes(keep);
      LOG.info("fp16 auto: {} node(s) exceed {} and stay float32", hot.size(), o.fp16AutoBound());
    }
    Fp16Converter.Result r = new Fp16Converter(f).convert(model);
    r.clamps().forEach(c -> LOG.warn("fp16: {}", c));
    LOG.info("fp16: {} node(s) kept float32, {} cast(s) inserted", r.fp32Nodes().size(), r.casts());
    return r.model();
  }

  static OnnxModel quantizeInt8(
      OnnxModel model, String sha256, PrecisionOptions o, QuantizerOptions q, Progress progress) {
    Quantizer quantizer = new Quantizer(q);
    CalibrationCache cache = null;
    if (o.calibrationCache() != null && Files.isRegularFile(o.calibrationCache())) {
      LOG.info("using calibration cache {}", o.calibrationCache());
      cache = CalibrationCache.load(o.calibrationCache());
      if (!cache.modelSha256().equals(sha256)) {
        LOG.warn(
            "calibration cache {} was made for model {}, not {}",
            o.calibrationCache(),
            cache.modelSha256(),
            sha256);
      }
    }
    if (cache == null) {
      CalibrationData data = calibrationData(model, o);
      LOG.info("calibrating ({}) on {}", q.method(), data.description());
      cache = quantizer.calibrate(model, sha256, data, progress);
      if (o.calibrationCache() != null) {
        cache.save(o.calibrationCache());
        LOG.info("calibration cache written to {}", o.calibrationCache());
      }
    }
    return quantizer.quantize(model, cache);
  }

  static CalibrationData calibrationData(OnnxModel model, PrecisionOptions o) {
    if (o.calibration() == null) {
      LOG.warn("calibrating on random:16 inputs; give calibration data for real accuracy");
      return CalibrationSources.parse("random:16", model, o.tokenizer());
    }
    return CalibrationSources.parse(o.calibration(), model, o.tokenizer());
  }

  private static String cacheKey(ModelSource source, PrecisionGraph graph, PrecisionOptions o) {
    Precision p = graph.precision();
    StringBuilder k = new StringBuilder();
    k.append(source.sha256()).append('|').append(p).append('|');
    if (p == Precision.INT8) {
      k.append(quantization(graph, o).key()).append('|').append(o.calibration());
      if (o.calibrationCache() != null && Files.isRegularFile(o.calibrationCache())) {
        k.append('|').append(digest(read(o.calibrationCache())));
      }
    } else {
      k.append(o.fp16().key()).append('|').append(o.fp16AutoBound()).append('|');
      k.append(Float.isNaN(o.fp16AutoBound()) ? "" : o.calibration());
    }
    return source.sha256().substring(0, 16)
        + "-"
        + p.label()
        + "-"
        + digest(k.toString().getBytes(StandardCharsets.UTF_8)).substring(0, 16)
        + (graph.float16Form() ? "-f16" : "");
  }

  private static byte[] read(Path p) {
    try {
      return Files.readAllBytes(p);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read " + p + ": " + e.getMessage());
    }
  }

  private static String digest(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
