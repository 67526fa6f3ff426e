package io.kiln.cuda;

import io.kiln.InvalidInputException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The shapes that get their own CUDA graph. Batches are 1, 2, 4, then multiples of 8 up to the
 * maximum; sequence lengths are multiples of a step (such as 32) or powers of two. A request is
 * padded up to the smallest bucket that holds it.
 */
public final class ShapeBuckets {
  private final int[] batches;
  private final int[] seqs;

  public ShapeBuckets(int[] batches, int[] seqs) {
    if (batches.length == 0 || seqs.length == 0) {
      throw new InvalidInputException("bucket lists must not be empty");
    }
    this.batches = sortedPositive(batches, "batch");
    this.seqs = sortedPositive(seqs, "sequence");
  }

  /** Batches 1, 2, 4, 8, 16, 24, ... up to {@code maxBatch} (always included). */
  public static int[] defaultBatches(int maxBatch) {
    List<Integer> out = new ArrayList<>();
    for (int b : new int[] {1, 2, 4}) {
      if (b <= maxBatch) {
        out.add(b);
      }
    }
    for (int b = 8; b <= maxBatch; b += 8) {
      out.add(b);
    }
    if (out.get(out.size() - 1) != maxBatch) {
      out.add(maxBatch);
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  /** Sequence lengths step, 2*step, ... up to {@code maxSeq} (always included). */
  public static int[] multiplesOf(int step, int maxSeq) {
    List<Integer> out = new ArrayList<>();
    for (int s = step; s < maxSeq; s += step) {
      out.add(s);
    }
    out.add(maxSeq);
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  /** Sequence lengths min, 2*min, 4*min, ... up to {@code maxSeq} (always included). */
  public static int[] powersOfTwo(int min, int maxSeq) {
    List<Integer> out = new ArrayList<>();
    for (int s = min; s < maxSeq; s *= 2) {
      out.add(s);
    }
    out.add(maxSeq);
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  public static ShapeBuckets standard(int maxBatch, int maxSeq) {
    return new ShapeBuckets(defaultBatches(maxBatch), multiplesOf(32, maxSeq));
  }

  /** The smallest bucket holding {@code batch} rows of {@code seq} tokens. */
  public Bucket bucketFor(long batch, long seq) {
    int b = ceiling(batches, batch, "batch");
    int s = ceiling(seqs, seq, "sequence length");
    return new Bucket(b, s);
  }

  public int maxBatch() {
    return batches[batches.length - 1];
  }

  public int maxSeq() {
    return seqs[seqs.length - 1];
  }

  public int[] batches() {
    return batches.clone();
  }

  public int[] seqs() {
    return seqs.clone();
  }

  public List<Bucket> all() {
    List<Bucket> out = new ArrayList<>();
    for (int b : batches) {
      for (int s : seqs) {
        out.add(new Bucket(b, s));
      }
    }
    return out;
  }

  private static int ceiling(int[] sorted, long n, String what) {
    if (n < 1) {
      throw new InvalidInputException(what + " must be >= 1, got " + n);
    }
    for (int v : sorted) {
      if (v >= n) {
        return v;
      }
    }
    throw new InvalidInputException(
        what + " " + n + " exceeds the largest bucket " + sorted[sorted.length - 1]);
  }

  private static int[] sortedPositive(int[] v, String what) {
    int[] s = Arrays.stream(v).distinct().sorted().toArray();
    if (s[0] < 1) {
      throw new InvalidInputException(what + " buckets must be >= 1");
    }
    return s;
  }

  @Override
  public String toString() {
    return "batches " + Arrays.toString(batches) + ", seqs " + Arrays.toString(seqs);
  }
}
