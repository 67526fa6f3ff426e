package io.kiln.cuda;

/** One padded input shape: a batch size and a sequence length. */
public record Bucket(int batch, int seq) {
  @Override
  public String toString() {
    return batch + "x" + seq;
  }
}
