package io.kiln.engine.trt;

import static org.junit.jupiter.api.Assertions.*;

import io.kiln.InvalidInputException;
import io.kiln.cuda.Bucket;
import io.kiln.cuda.ShapeBuckets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProfileSelectorTest {
  @Test
  void staticProfilePerBucketSelectsItsOwnProfile() {
    List<ShapeProfile> ps = ShapeProfile.perBucket(new long[] {1, 8, 32, 64}, new long[] {128});
    ProfileSelector s = new ProfileSelector(ps, ProfileSelector.derivedBuckets(ps));
    assertEquals(new Bucket(8, 128), s.bucketFor(5, 100));
    assertEquals(1, s.profileFor(new Bucket(8, 128)));
    assertEquals(3, s.profileFor(s.bucketFor(33, 128)));
    assertEquals(-1, s.profileFor(new Bucket(2, 128)));
    assertThrows(InvalidInputException.class, () -> s.bucketFor(65, 128));
  }

  @Test
  void optimumMatchWinsOverANarrowerRange() {
    List<ShapeProfile> ps =
        List.of(ShapeProfile.of("1:8:64", "1:128:128"), ShapeProfile.of("8:16:16", "128"));
    ProfileSelector s = new ProfileSelector(ps, ProfileSelector.derivedBuckets(ps));
    assertEquals(0, s.profileFor(new Bucket(8, 128)), "profile 0 is tuned for 8 x 128");
    assertEquals(1, s.profileFor(new Bucket(16, 128)), "profile 1 is tuned for 16 x 128");
    assertEquals(1, s.profileFor(new Bucket(12, 128)), "the narrower range holds 12 x 128");
    assertEquals(0, s.profileFor(new Bucket(24, 96)));
  }

  @Test
  void bucketWithoutAProfileMovesToTheNextThatHasOne() {
    // Buckets 1,2,4,8 x 32,64 but profiles only for batch 1 (any length) and for 8 x 64.
    List<ShapeProfile> ps = List.of(ShapeProfile.of("1", "1:32:64"), ShapeProfile.fixed(8, 64));
    ShapeBuckets buckets = new ShapeBuckets(new int[] {1, 2, 4, 8}, new int[] {32, 64});
    ProfileSelector s = new ProfileSelector(ps, buckets);
    assertEquals(new Bucket(1, 32), s.bucketFor(1, 20));
    assertEquals(new Bucket(8, 64), s.bucketFor(3, 20), "2 x 32 and 4 x 32 have no profile");
    assertEquals(1, s.profileFor(s.bucketFor(3, 20)));
  }
}
