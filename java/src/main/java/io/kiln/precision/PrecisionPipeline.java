package io.kiln.precision;

import io.kiln.InvalidInputException;
import io.kiln.KilnException;
import io.kiln.Session;
import io.kiln.engine.ModelSource;
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
   * The model converted to {@code precision}, from the cache when there. FP32 returns the source.
   *
   * @param backend the engine provider's name; ONNX Runtime gets UINT8 activations by default
   */
  public static ModelSource apply(
      ModelSource source,
      Session.Precision precision,
      PrecisionOptions options,
      String backend,
      Path cacheDir) {
    if (precision == Session.Precision.FP32) {
      return source;
    }
    PrecisionOptions o = options == null ? PrecisionOptions.defaults() : options;
    Quantizer.Options q = quantizationFor(o, backend);
    String key = cacheKey(source, precision, o, q) + (typedInt8(precision, backend) ? "-f16" : "");
    Path file = cacheDir.resolve("precision").resolve(key + ".onnx");
    if (Files.isRegularFile(file)) {
      LOG.info("using cached {} graph {}", precision, file);
      return ModelSource.of(file);
    }
    OnnxModel model = OnnxModel.of(source);
    OnnxModel converted =
        precision == Session.Precision.FP16
            ? convertFp16(model, o)
            : quantizeInt8(model, source.sha256(), o, q);
    if (typedInt8(precision, backend)) {
      Float16Qdq.Result half = Float16Qdq.convert(converted);
      half.clamps().forEach(c -> LOG.info("float16: {}", c));
      converted = half.model();
    }
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
    LOG.info("{} graph of {} cached as {}", precision, source.name(), file);
    return ModelSource.of(file);
  }

  /**
   * TensorRT takes INT8 as the float16 form of the Q/DQ graph and builds it strongly typed (its
   * precision flags are deprecated), so nothing outside the Q/DQ pairs runs in float32.
   */
  public static boolean typedInt8(Session.Precision precision, String backend) {
    return precision == Session.Precision.INT8 && "tensorrt".equals(backend);
  }

  /**
   * The quantization a backend runs fastest unless the options name one: ONNX Runtime's integer
   * kernels want UINT8 activations; TensorRT the weighted MatMuls with one shared Q/DQ pair per
   * tensor, the fastest layout measured (bench/results/gpu-bert-base-2026-11-29-job4.md).
   */
  static Quantizer.Options quantizationFor(PrecisionOptions o, String backend) {
    if (o.quantization() != null) {
      return o.quantization();
    }
    Quantizer.Options d = Quantizer.Options.defaults();
    if (backend != null && backend.startsWith("onnxruntime")) {
      return d.withActivationType(Quantizer.ActivationType.UINT8);
    }
    return "tensorrt".equals(backend) ? d.withWeightedOnly(true).withSharedQdq(true) : d;
  }

  static OnnxModel convertFp16(OnnxModel model, PrecisionOptions o) {
    Fp16Converter.Options f = o.fp16();
    if (!Float.isNaN(o.fp16AutoBound())) {
      Set<String> hot =
          Fp16Converter.nodesBeyond(
              model, calibrationData(model, o), o.fp16AutoBound(), Progress.NONE);
      Set<String> keep = new java.util.HashSet<>(f.fp32Nodes());
      keep.addAll(hot);
      f = f.withFp32Nodes(keep);
      LOG.info("fp16 auto: {} node(s) exceed {} and stay float32", hot.size(), o.fp16AutoBound());
    }
    Fp16Converter.Result r = new Fp16Converter(f).convert(model);
    r.clamps().forEach(c -> LOG.warn("fp16: {}", c));
    return r.model();
  }

  static OnnxModel quantizeInt8(
      OnnxModel model, String sha256, PrecisionOptions o, Quantizer.Options q) {
    Quantizer quantizer = new Quantizer(q);
    CalibrationCache cache = null;
    if (o.calibrationCache() != null && Files.isRegularFile(o.calibrationCache())) {
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
      cache = quantizer.calibrate(model, sha256, calibrationData(model, o), Progress.NONE);
      if (o.calibrationCache() != null) {
        cache.save(o.calibrationCache());
      }
    }
    return quantizer.quantize(model, cache);
  }

  static CalibrationData calibrationData(OnnxModel model, PrecisionOptions o) {
    if (o.calibration() == null) {
      LOG.warn("calibrating on random:16 inputs; give calibration data for real accuracy");
      return CalibrationData.parse("random:16", model, o.tokenizer());
    }
    return CalibrationData.parse(o.calibration(), model, o.tokenizer());
  }

  private static String cacheKey(
      ModelSource source, Session.Precision p, PrecisionOptions o, Quantizer.Options q) {
    StringBuilder k = new StringBuilder();
    k.append(source.sha256()).append('|').append(p).append('|');
    if (p == Session.Precision.INT8) {
      k.append(q.key()).append('|').append(o.calibration());
      if (o.calibrationCache() != null && Files.isRegularFile(o.calibrationCache())) {
        k.append('|').append(digest(read(o.calibrationCache())));
      }
    } else {
      k.append(o.fp16().key()).append('|').append(o.fp16AutoBound()).append('|');
      k.append(Float.isNaN(o.fp16AutoBound()) ? "" : o.calibration());
    }
    return source.sha256().substring(0, 16)
        + "-"
        + p.name().toLowerCase(java.util.Locale.ROOT)
        + "-"
        + digest(k.toString().getBytes(StandardCharsets.UTF_8)).substring(0, 16);
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
