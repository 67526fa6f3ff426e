package io.kiln.server;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.ModelException;
import io.kiln.util.HfTokenizers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** The model's tokenizer.json: text to ids and back, with int ids as the engine takes them. */
final class TextTokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer tokenizer;

  private TextTokenizer(HuggingFaceTokenizer tokenizer) {
    this.tokenizer = tokenizer;
  }

  /** The tokenizer beside the model, or null when the directory has none (ids only then). */
  static TextTokenizer openOrNull(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      return null;
    }
    try {
      return new TextTokenizer(
          HfTokenizers.open(file, Map.of("truncation", "false", "padding", "false")));
    } catch (IOException | RuntimeException e) {
      throw new ModelException("cannot load tokenizer " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Ids of {@code text}; {@code addSpecialTokens} adds what the tokenizer's post-processor adds
   * (e.g. BOS), which text rendered from a chat template already holds.
   */
  int[] encode(String text, boolean addSpecialTokens) {
    long[] ids = tokenizer.encode(text, addSpecialTokens, false).getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
    }
    return out;
  }

  /** Text of {@code ids[from, to)}, special tokens left out. */
  String decode(List<Integer> ids, int from, int to) {
    long[] slice = new long[to - from];
    for (int i = from; i < to; i++) {
      slice[i - from] = ids.get(i);
    }
    return tokenizer.decode(slice, true);
  }

  String decode(int[] ids) {
    long[] all = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      all[i] = ids[i];
    }
    return tokenizer.decode(all, true);
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
