package io.kiln.cli;

import io.kiln.InvalidInputException;
import io.kiln.embedding.EmbeddingOptions;
import io.kiln.embedding.MissingEmbeddingSettingException;
import io.kiln.embedding.Pooling;
import io.kiln.embedding.TextEmbedder;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** The options that say which embedding model and how it pools, shared by the embed commands. */
final class EmbeddingModelOptions {
  @Option(
      names = "--model",
      paramLabel = "MODEL",
      description =
          "model directory (onnx/model.onnx or model.onnx, tokenizer.json, config.json,"
              + " sentence-transformers files) or an ONNX file with --tokenizer (default: the"
              + " embedded all-MiniLM-L6-v2)")
  Path model;

  @Option(
      names = "--tokenizer",
      paramLabel = "TOKENIZER.json",
      description = "the tokenizer.json of an ONNX file given as --model")
  Path tokenizer;

  @Option(
      names = "--pooling",
      paramLabel = "MODE",
      description = "cls, mean, max, mean-sqrt-len or last-token (default: the model's)")
  String pooling;

  @Option(
      names = "--normalize",
      negatable = true,
      description =
          "scale to unit length; --no-normalize keeps the raw pooled vector (default:"
              + " the model's)")
  Boolean normalize;

  @Option(names = "--prompt", paramLabel = "TEXT", description = "text put before every input")
  String prompt;

  @Option(
      names = "--prompt-name",
      paramLabel = "NAME",
      description = "a prompt named in config_sentence_transformers.json, e.g. query")
  String promptName;

  @Option(
      names = "--dimensions",
      paramLabel = "N",
      description = "keep the first N dimensions (Matryoshka), renormalized")
  Integer dimensions;

  /** The embedding options these flags give; bad values are usage errors. */
  EmbeddingOptions embeddingOptions(CommandLine.Model.CommandSpec spec, SessionOptions options) {
    EmbeddingOptions o = EmbeddingOptions.defaults();
    if (pooling != null) {
      try {
        o = o.withPooling(Pooling.fromName(pooling));
      } catch (InvalidInputException e) {
        throw OptionRanges.usage(spec, "--pooling: " + e.getMessage());
      }
    }
    if (prompt != null && promptName != null) {
      throw OptionRanges.usage(spec, "give --prompt or --prompt-name, not both");
    }
    if (dimensions != null) {
      o = o.withDimensions(OptionRanges.between(spec, "--dimensions", dimensions, 1, 1 << 20));
    }
    // --max-batch caps the session; within it the embedder takes the backend's preferred runs.
    return o.withNormalize(normalize).withPrompt(prompt).withPromptName(promptName);
  }

  /** The embedder these flags name, on the session options. */
  TextEmbedder open(
      CommandLine.Model.CommandSpec spec, SessionOptions options, EmbeddingOptions embedding) {
    try {
      if (model == null) {
        return TextEmbedder.defaultModel(options::apply, embedding);
      }
      if (Files.isDirectory(model)) {
        if (tokenizer != null) {
          throw OptionRanges.usage(
              spec, "--tokenizer is for an ONNX file; a model directory has its tokenizer.json");
        }
        return TextEmbedder.open(model, embedding, options::apply);
      }
      if (tokenizer == null) {
        throw new InvalidInputException("--model FILE.onnx needs --tokenizer TOKENIZER.json");
      }
      Path beside = model.toAbsolutePath().getParent();
      return TextEmbedder.open(options.builder(model, null), tokenizer, beside, embedding);
    } catch (MissingEmbeddingSettingException e) {
      throw OptionRanges.usage(spec, e.getMessage());
    }
  }
}
