package io.kiln.precision;

import java.nio.file.Path;

/**
 * How a session turns its float32 model into FP16 or INT8.
 *
 * @param quantization INT8 settings; null for the defaults of the backend (UINT8 activations on
 *     ONNX Runtime CPU, INT8 elsewhere)
 * @param fp16 FP16 settings
 * @param calibration calibration data spec ({@code DIR}, {@code random:N}, {@code texts:FILE});
 *     null with no cache means {@code random:16} with a warning
 * @param calibrationCache a calibration cache to reuse (read when present, written after
 *     calibrating); may be null
 * @param tokenizer tokenizer.json for {@code texts:} calibration; may be null
 * @param fp16AutoBound in FP16, keep float32 any node whose activations exceed this on the
 *     calibration data; NaN turns the auto mode off
 */
public record PrecisionOptions(
    QuantizerOptions quantization,
    Fp16Converter.Options fp16,
    String calibration,
    Path calibrationCache,
    Path tokenizer,
    float fp16AutoBound) {

  public static PrecisionOptions defaults() {
    return new PrecisionOptions(
        null, Fp16Converter.Options.defaults(), null, null, null, Float.NaN);
  }

  public PrecisionOptions withQuantization(QuantizerOptions q) {
    return new PrecisionOptions(q, fp16, calibration, calibrationCache, tokenizer, fp16AutoBound);
  }

  public PrecisionOptions withFp16(Fp16Converter.Options f) {
    return new PrecisionOptions(
        quantization, f, calibration, calibrationCache, tokenizer, fp16AutoBound);
  }

  public PrecisionOptions withCalibration(String spec) {
    return new PrecisionOptions(
        quantization, fp16, spec, calibrationCache, tokenizer, fp16AutoBound);
  }

  public PrecisionOptions withCalibrationCache(Path file) {
    return new PrecisionOptions(quantization, fp16, calibration, file, tokenizer, fp16AutoBound);
  }

  public PrecisionOptions withTokenizer(Path file) {
    return new PrecisionOptions(
        quantization, fp16, calibration, calibrationCache, file, fp16AutoBound);
  }

  /** FP16 auto mode with the given bound (1e4 is the usual choice). */
  public PrecisionOptions withFp16Auto(float bound) {
    return new PrecisionOptions(
        quantization, fp16, calibration, calibrationCache, tokenizer, bound);
  }
}
