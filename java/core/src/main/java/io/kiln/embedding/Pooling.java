package io.kiln.embedding;

import io.kiln.InvalidInputException;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** How token states become one sentence vector; the modes of sentence-transformers' Pooling. */
public enum Pooling {
  /** The state of the first token (BERT's [CLS]). */
  CLS("cls"),
  /** The mean of the states the attention mask keeps. */
  MEAN("mean"),
  /** The largest value of each dimension over the kept tokens. */
  MAX("max"),
  /** The sum of the kept states divided by the square root of their count. */
  MEAN_SQRT_LEN("mean-sqrt-len"),
  /** The state of the last kept token (decoder-style encoders). */
  LAST_TOKEN("last-token");

  private final String optionName;

  Pooling(String optionName) {
    this.optionName = optionName;
  }

  /** The name on the command line, e.g. {@code mean-sqrt-len}. */
  public String optionName() {
    return optionName;
  }

  /** All option names, comma-separated, for messages. */
  public static String optionNames() {
    return Arrays.stream(values()).map(Pooling::optionName).collect(Collectors.joining(", "));
  }

  /** The mode for an option name ({@code last-token}) or enum name ({@code LAST_TOKEN}). */
  public static Pooling fromName(String name) {
    String wanted = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
    for (Pooling p : values()) {
      if (p.optionName.equals(wanted)) {
        return p;
      }
    }
    throw new InvalidInputException(
        "unknown pooling '" + name + "': expected one of " + optionNames());
  }

  /**
   * Pools one row of a {@code [batch, sequence, hidden]} output.
   *
   * @param hidden the whole output, row-major
   * @param row which row of the batch
   * @param sequence the output's sequence length
   * @param dim the hidden size
   * @param mask the row's attention mask (at least {@code sequence} long; padding is 0)
   */
  public float[] pool(float[] hidden, int row, int sequence, int dim, long[] mask) {
    int base = row * sequence * dim;
    double[] acc = new double[dim];
    int kept = 0;
    int last = -1;
    if (this == MAX) {
      Arrays.fill(acc, Double.NEGATIVE_INFINITY);
    }
    for (int s = 0; s < sequence; s++) {
      if (mask[s] == 0) {
        continue;
      }
      kept++;
      last = s;
      if (this == MEAN || this == MEAN_SQRT_LEN) {
        for (int d = 0; d < dim; d++) {
          acc[d] += hidden[base + s * dim + d];
        }
      } else if (this == MAX) {
        for (int d = 0; d < dim; d++) {
          acc[d] = Math.max(acc[d], hidden[base + s * dim + d]);
        }
      }
    }
    if (kept == 0) {
      throw new InvalidInputException("a text encoded to no tokens; there is nothing to pool");
    }
    float[] out = new float[dim];
    int from = this == CLS ? 0 : last;
    for (int d = 0; d < dim; d++) {
      out[d] =
          switch (this) {
            case CLS, LAST_TOKEN -> hidden[base + from * dim + d];
            case MEAN -> (float) (acc[d] / kept);
            case MEAN_SQRT_LEN -> (float) (acc[d] / Math.sqrt(kept));
            case MAX -> (float) acc[d];
          };
    }
    return out;
  }
}
