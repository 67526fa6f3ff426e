package io.kiln.engine.trt;

import io.kiln.InvalidInputException;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.ShapeBuckets;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;

/** Maps a request's (batch, seq) to a bucket and the bucket to an optimization profile. */
final class ProfileSelector {
  private final List<ShapeProfile> profiles;
  private final ShapeBuckets buckets;

  ProfileSelector(List<ShapeProfile> profiles, ShapeBuckets buckets) {
    this.profiles = List.copyOf(profiles);
    this.buckets = buckets;
  }

  /**
   * Static profiles give their own shapes as buckets; otherwise batches 1, 2, 4, then multiples of
   * 8 up to the largest maximum, and sequence multiples of 32 up to the largest maximum.
   */
  static ShapeBuckets derivedBuckets(List<ShapeProfile> profiles) {
    TreeSet<Integer> batches = new TreeSet<>();
    TreeSet<Integer> seqs = new TreeSet<>();
    int maxBatch = 1;
    int maxSeq = 1;
    boolean allStatic = true;
    for (ShapeProfile p : profiles) {
      allStatic &= p.isStatic();
      batches.add((int) p.batch().opt());
      seqs.add((int) p.seq().opt());
      maxBatch = Math.max(maxBatch, (int) p.batch().max());
      maxSeq = Math.max(maxSeq, (int) p.seq().max());
    }
    if (allStatic) {
      return new ShapeBuckets(
          batches.stream().mapToInt(Integer::intValue).toArray(),
          seqs.stream().mapToInt(Integer::intValue).toArray());
    }
    int step = Math.min(32, maxSeq);
    return new ShapeBuckets(
        ShapeBuckets.defaultBatches(maxBatch), ShapeBuckets.multiplesOf(step, maxSeq));
  }

  /** The smallest bucket holding (batch, seq) that some profile covers. */
  Bucket bucketFor(long batch, long seq) {
    Bucket first = buckets.bucketFor(batch, seq); // validates against the largest bucket
    if (profileFor(first) >= 0) {
      return first;
    }
    return buckets.all().stream()
        .filter(b -> b.batch() >= batch && b.seq() >= seq && profileFor(b) >= 0)
        .min(
            Comparator.comparingLong((Bucket b) -> (long) b.batch() * b.seq())
                .thenComparingInt(Bucket::batch))
        .orElseThrow(
            () ->
                new InvalidInputException(
                    "no optimization profile holds batch " + batch + ", sequence " + seq));
  }

  /** A profile whose optimum is the bucket, else the narrowest that holds it; -1 when none. */
  int profileFor(Bucket b) {
    int best = -1;
    long bestWidth = Long.MAX_VALUE;
    for (int p = 0; p < profiles.size(); p++) {
      ShapeProfile sp = profiles.get(p);
      if (!sp.contains(b.batch(), b.seq())) {
        continue;
      }
      if (sp.batch().opt() == b.batch() && sp.seq().opt() == b.seq()) {
        return p;
      }
      long width =
          (sp.batch().max() - sp.batch().min()) * 100_000 + (sp.seq().max() - sp.seq().min());
      if (width < bestWidth) {
        bestWidth = width;
        best = p;
      }
    }
    return best;
  }
}
