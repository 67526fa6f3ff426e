package io.kiln.precision;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.util.HfTokenizers;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * Sentences (one per line) tokenized into {@code input_ids}, {@code attention_mask} and {@code
 * token_type_ids} batches, padded to the longest sentence of the batch. Lines are read lazily.
 */
public final class TextCalibrationData implements CalibrationData {
  private final Path textFile;
  private final Path tokenizerFile;
  private final List<String> inputNames;
  private final int batchSize;
  private final int maxLength;

  private TextCalibrationData(
      Path textFile, Path tokenizerFile, List<String> inputNames, int batchSize, int maxLength) {
    this.textFile = textFile;
    this.tokenizerFile = tokenizerFile;
    this.inputNames = List.copyOf(inputNames);
    this.batchSize = batchSize;
    this.maxLength = maxLength;
  }

  public static TextCalibrationData open(
      Path textFile, Path tokenizerFile, List<String> inputNames, int batchSize, int maxLength) {
    if (!Files.isRegularFile(textFile)) {
      throw new InvalidInputException("calibration text file not found: " + textFile);
    }
    if (!Files.isRegularFile(tokenizerFile)) {
      throw new InvalidInputException("tokenizer file not found: " + tokenizerFile);
    }
    try (BufferedReader r = Files.newBufferedReader(textFile, StandardCharsets.UTF_8)) {
      if (r.lines().noneMatch(l -> !l.isBlank())) {
        throw new InvalidInputException("calibration set is empty: no text in " + textFile);
      }
    } catch (IOException e) {
      throw new InvalidInputException("cannot read " + textFile + ": " + e.getMessage());
    }
    return new TextCalibrationData(textFile, tokenizerFile, inputNames, batchSize, maxLength);
  }

  @Override
  public String description() {
    return "texts:" + textFile;
  }

  @Override
  public Iterator<Map<String, Tensor>> batches() {
    BufferedReader reader;
    HuggingFaceTokenizer tokenizer;
    try {
      reader = Files.newBufferedReader(textFile, StandardCharsets.UTF_8);
      tokenizer =
          HfTokenizers.open(
              tokenizerFile,
              Map.of("maxLength", Integer.toString(maxLength), "truncation", "true"));
    } catch (IOException e) {
      throw new InvalidInputException("cannot open " + textFile + ": " + e.getMessage());
    }
    return new Iterator<>() {
      List<String> pending = read();

      private List<String> read() {
        List<String> lines = new ArrayList<>();
        try {
          String line;
          while (lines.size() < batchSize && (line = reader.readLine()) != null) {
            if (!line.isBlank()) {
              lines.add(line.strip());
            }
          }
          if (lines.isEmpty()) {
            reader.close();
            tokenizer.close();
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
        return lines;
      }

      @Override
      public boolean hasNext() {
        return !pending.isEmpty();
      }

      @Override
      public Map<String, Tensor> next() {
        if (pending.isEmpty()) {
          throw new NoSuchElementException();
        }
        Map<String, Tensor> feed = encode(tokenizer, pending, inputNames);
        pending = read();
        return feed;
      }
    };
  }

  /** Tokenizes sentences into a padded batch with the inputs the model declares. */
  public static Map<String, Tensor> encode(
      HuggingFaceTokenizer tokenizer, List<String> sentences, List<String> inputNames) {
    Encoding[] enc = tokenizer.batchEncode(sentences);
    int len = 0;
    for (Encoding e : enc) {
      len = Math.max(len, e.getIds().length);
    }
    int b = enc.length;
    long[] ids = new long[b * len];
    long[] mask = new long[b * len];
    long[] types = new long[b * len];
    for (int i = 0; i < b; i++) {
      long[] id = enc[i].getIds();
      long[] m = enc[i].getAttentionMask();
      long[] t = enc[i].getTypeIds();
      System.arraycopy(id, 0, ids, i * len, id.length);
      System.arraycopy(m, 0, mask, i * len, m.length);
      System.arraycopy(t, 0, types, i * len, t.length);
    }
    Map<String, Tensor> feed = new LinkedHashMap<>();
    for (String name : inputNames) {
      long[] v =
          switch (name) {
            case "input_ids" -> ids;
            case "attention_mask" -> mask;
            case "token_type_ids" -> types;
            default ->
                throw new InvalidInputException("text calibration cannot fill input " + name);
          };
      feed.put(name, Tensor.of(v, b, len));
    }
    return feed;
  }
}
