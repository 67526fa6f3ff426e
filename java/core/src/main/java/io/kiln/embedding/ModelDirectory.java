package io.kiln.embedding;

import com.fasterxml.jackson.databind.JsonNode;
import io.kiln.ModelException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Hugging Face / sentence-transformers model directory: {@code onnx/model.onnx} or {@code
 * model.onnx}, {@code tokenizer.json}, {@code config.json} and the sentence-transformers files.
 *
 * @param dir the directory
 * @param onnxFile the ONNX model in it
 * @param tokenizerJson its tokenizer.json
 * @param maxTokens the longest input the model takes: sentence_bert_config.json's max_seq_length,
 *     else tokenizer.json's truncation, within config.json's max_position_embeddings (else {@link
 *     #DEFAULT_MAX_TOKENS})
 * @param config what its sentence-transformers files say
 */
public record ModelDirectory(
    Path dir, Path onnxFile, Path tokenizerJson, int maxTokens, SentenceTransformersConfig config) {
  /** The longest input when neither the model nor its tokenizer says, BERT's 512 positions. */
  public static final int DEFAULT_MAX_TOKENS = 512;

  /** Reads {@code dir}; a {@link ModelException} names what is missing. */
  public static ModelDirectory open(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new ModelException("model directory not found: " + dir);
    }
    Path onnx = onnxFile(dir);
    Path tokenizer = dir.resolve("tokenizer.json");
    if (!Files.isRegularFile(tokenizer)) {
      throw new ModelException("no tokenizer.json in model directory " + dir);
    }
    SentenceTransformersConfig st = SentenceTransformersConfig.read(dir);
    int maxTokens = DEFAULT_MAX_TOKENS;
    Path configJson = dir.resolve("config.json");
    if (Files.isRegularFile(configJson)) {
      JsonNode positions =
          SentenceTransformersConfig.readJson(configJson).path("max_position_embeddings");
      if (positions.canConvertToInt() && positions.asInt() > 0) {
        maxTokens = positions.asInt();
      }
    }
    // sentence-transformers' max_seq_length rules; else the tokenizer's own truncation; both
    // within the position table.
    JsonNode truncation = SentenceTransformersConfig.readJson(tokenizer).path("truncation");
    if (st.maxSeqLength() != null) {
      maxTokens = Math.min(maxTokens, st.maxSeqLength());
    } else if (truncation.path("max_length").canConvertToInt()
        && truncation.path("max_length").asInt() > 0) {
      maxTokens = Math.min(maxTokens, truncation.path("max_length").asInt());
    }
    return new ModelDirectory(dir, onnx, tokenizer, maxTokens, st);
  }

  /**
   * The ONNX file of a model path: the path itself when it is a file, else {@code onnx/model.onnx}
   * or {@code model.onnx} inside the directory.
   */
  public static Path onnxFile(Path model) {
    if (!Files.isDirectory(model)) {
      return model;
    }
    for (Path candidate :
        new Path[] {model.resolve("onnx").resolve("model.onnx"), model.resolve("model.onnx")}) {
      if (Files.isRegularFile(candidate)) {
        return candidate;
      }
    }
    throw new ModelException(
        "no ONNX model in " + model + ": expected onnx/model.onnx or model.onnx");
  }
}
