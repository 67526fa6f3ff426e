package io.kiln;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** The public BERT test model and its ONNX Runtime fp32 reference outputs. */
public record BertReference(
    Path model, long[][] inputIds, long[][] attentionMask, long[][] tokenTypes, float[] hidden) {
  public static final int HIDDEN = 128;

  public static BertReference load() throws IOException {
    Path dir = SharedModels.require("public/bert");
    JsonNode r = new ObjectMapper().readTree(dir.resolve("reference.json").toFile());
    JsonNode h = r.get("last_hidden_state");
    float[] hidden = new float[h.size()];
    for (int i = 0; i < hidden.length; i++) {
      hidden[i] = h.get(i).floatValue();
    }
    return new BertReference(
        dir.resolve("model.onnx"),
        matrix(r.get("input_ids")),
        matrix(r.get("attention_mask")),
        matrix(r.get("token_type_ids")),
        hidden);
  }

  private static long[][] matrix(JsonNode n) {
    long[][] m = new long[n.size()][];
    for (int i = 0; i < m.length; i++) {
      m[i] = new long[n.get(i).size()];
      for (int j = 0; j < m[i].length; j++) {
        m[i][j] = n.get(i).get(j).asLong();
      }
    }
    return m;
  }

  public int rows() {
    return inputIds.length;
  }

  public int length() {
    return inputIds[0].length;
  }

  /** The unpadded length of row {@code r}: its count of mask ones. */
  public int validLength(int r) {
    int n = 0;
    for (long m : attentionMask[r]) {
      n += (int) m;
    }
    return n;
  }

  /** All rows as one padded batch. */
  public Map<String, Tensor> batch() {
    return inputs(0, rows(), length());
  }

  /** Row {@code r} alone, cut to its valid length (no padding). */
  public Map<String, Tensor> row(int r) {
    return inputs(r, 1, validLength(r));
  }

  private Map<String, Tensor> inputs(int first, int count, int len) {
    long[] ids = new long[count * len];
    long[] mask = new long[count * len];
    long[] types = new long[count * len];
    for (int i = 0; i < count; i++) {
      System.arraycopy(inputIds[first + i], 0, ids, i * len, len);
      System.arraycopy(attentionMask[first + i], 0, mask, i * len, len);
      System.arraycopy(tokenTypes[first + i], 0, types, i * len, len);
    }
    Map<String, Tensor> m = new LinkedHashMap<>();
    m.put("input_ids", Tensor.of(ids, count, len));
    m.put("attention_mask", Tensor.of(mask, count, len));
    m.put("token_type_ids", Tensor.of(types, count, len));
    return m;
  }

  /** Largest |actual - reference| over the valid positions of row {@code r}. */
  public double maxErrorRow(int r, float[] actualRow, int actualLength) {
    double max = 0;
    for (int s = 0; s < validLength(r); s++) {
      for (int d = 0; d < HIDDEN; d++) {
        float expected = hidden[(r * length() + s) * HIDDEN + d];
        max = Math.max(max, Math.abs(actualRow[s * HIDDEN + d] - expected));
      }
    }
    if (actualLength < validLength(r)) {
      throw new AssertionError("row " + r + " came back too short: " + actualLength);
    }
    return max;
  }
}
