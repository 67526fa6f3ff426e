package io.kiln.execution.llm.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.SequenceChunk;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.junit.jupiter.api.Test;

/** The host-side parts of the CUDA runner, which need no device: buckets, step layout, checks. */
class GpuLayoutTest {
  @Test
  void decodeBucketsArePowersOfTwoThenStepsOfEight() {
    assertArrayEquals(new int[] {1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64}, DecodeBuckets.upTo(64));
    assertArrayEquals(new int[] {1, 2, 4, 5}, DecodeBuckets.upTo(5));
    assertArrayEquals(new int[] {1, 2, 4, 8, 12}, DecodeBuckets.upTo(12));
    assertArrayEquals(new int[] {1}, DecodeBuckets.upTo(1));
    int[] b = DecodeBuckets.upTo(64);
    assertEquals(1, DecodeBuckets.bucketFor(b, 1));
    assertEquals(4, DecodeBuckets.bucketFor(b, 3));
    assertEquals(24, DecodeBuckets.bucketFor(b, 17));
    assertEquals(64, DecodeBuckets.bucketFor(b, 64));
    assertEquals(-1, DecodeBuckets.bucketFor(b, 65));
  }

  @Test
  void splitsFillTheMultiprocessorsAndShrinkWithTheBatch() {
    assertEquals(16, DecodeBuckets.splitsFor(1, 8, 132, 16));
    assertEquals(9, DecodeBuckets.splitsFor(4, 8, 132, 16));
    assertEquals(1, DecodeBuckets.splitsFor(64, 8, 132, 16));
    assertEquals(1, DecodeBuckets.splitsFor(256, 8, 132, 16));
  }

  /**
   * A verification splits as far on a one-sequence runner as on a batch runner: the partial buffers
   * hold at least nine rows' splits.
   */
  @Test
  void verificationsSplitAlikeWhateverTheBatchLimit() {
    for (int maxRows : new int[] {1, 64}) {
      long capacity = DecodeBuckets.splitCapacity(maxRows);
      assertEquals(7, DecodeBuckets.splitsWithin(5, 8, 132, capacity), "5 rows, " + maxRows);
      assertEquals(16, DecodeBuckets.splitsWithin(2, 8, 132, capacity), "2 rows, " + maxRows);
      assertEquals(4, DecodeBuckets.splitsWithin(9, 8, 132, capacity), "9 rows, " + maxRows);
    }
    assertEquals(64L * 16, DecodeBuckets.splitCapacity(64));
    assertEquals(8, DecodeBuckets.splitsWithin(16, 2, 132, 16 * 8), "9 wanted, 8 held");
    assertEquals(1, DecodeBuckets.splitsWithin(64, 8, 132, DecodeBuckets.splitCapacity(64)));
  }

  @Test
  void decodeLayoutPadsThroughTheNullBlock() {
    StepLayout l = new StepLayout(8, 4, 4, 3, 16);
    List<SequenceChunk> batch =
        List.of(
            new SequenceChunk(1, new int[] {7}, 20, new int[] {5, 9, 2}, true),
            new SequenceChunk(2, new int[] {3}, 0, new int[] {4}, true));
    l.fillDecode(batch, 4);
    assertEquals(4, l.numTokens);
    assertEquals(4, l.numLogitRows);
    int[] d = l.data;
    assertArrayEquals(new int[] {7, 3, 0, 0}, Arrays.copyOfRange(d, l.tokens(), l.tokens() + 4));
    assertArrayEquals(
        new int[] {20, 0, 0, 0}, Arrays.copyOfRange(d, l.positions(), l.positions() + 4));
    // position 20 lives in logical block 1 (physical 9), offset 4
    assertArrayEquals(
        new int[] {9 * 16 + 4, 4 * 16, 0, 0}, Arrays.copyOfRange(d, l.slots(), l.slots() + 4));
    assertArrayEquals(new int[] {0, 1, 2, 3}, Arrays.copyOfRange(d, l.rowSeq(), l.rowSeq() + 4));
    assertArrayEquals(
        new int[] {21, 1, 1, 1}, Arrays.copyOfRange(d, l.contextLens(), l.contextLens() + 4));
    assertArrayEquals(
        new int[] {5, 9, 0}, Arrays.copyOfRange(d, l.blockTables(), l.blockTables() + 3));
    assertArrayEquals(
        new int[] {4, 0, 0}, Arrays.copyOfRange(d, l.blockTables() + 3, l.blockTables() + 6));
    assertEquals(0, d[l.blockTables() + 6]);
    assertEquals(0, d[l.blockTables() + 9]);
  }

  @Test
  void eagerLayoutHasOneAttentionRowPerTokenAndLogitsForTheLastOnes() {
    StepLayout l = new StepLayout(16, 4, 4, 4, 4);
    List<SequenceChunk> batch =
        List.of(
            // a chunked prefill continuing at position 6 (earlier blocks already in the pool)
            new SequenceChunk(1, new int[] {11, 12, 13}, 6, new int[] {3, 8, 1}, false),
            new SequenceChunk(2, new int[] {21}, 2, new int[] {6}, true),
            new SequenceChunk(3, new int[] {31, 32}, 0, new int[] {2}, true));
    l.fillEager(batch);
    int[] d = l.data;
    assertEquals(6, l.numTokens);
    assertEquals(2, l.numLogitRows);
    assertArrayEquals(
        new int[] {11, 12, 13, 21, 31, 32}, Arrays.copyOfRange(d, l.tokens(), l.tokens() + 6));
    assertArrayEquals(
        new int[] {6, 7, 8, 2, 0, 1}, Arrays.copyOfRange(d, l.positions(), l.positions() + 6));
    assertArrayEquals(
        new int[] {8 * 4 + 2, 8 * 4 + 3, 1 * 4, 6 * 4 + 2, 2 * 4, 2 * 4 + 1},
        Arrays.copyOfRange(d, l.slots(), l.slots() + 6));
    assertArrayEquals(
        new int[] {0, 0, 0, 1, 2, 2}, Arrays.copyOfRange(d, l.rowSeq(), l.rowSeq() + 6));
    assertArrayEquals(
        new int[] {7, 8, 9, 3, 1, 2}, Arrays.copyOfRange(d, l.contextLens(), l.contextLens() + 6));
    assertArrayEquals(new int[] {3, 5}, Arrays.copyOfRange(d, l.logitRows(), l.logitRows() + 2));
    assertArrayEquals(new int[] {1, 2}, Arrays.copyOf(l.logitChunk, 2));
    assertArrayEquals(
        new int[] {3, 8, 1, 0}, Arrays.copyOfRange(d, l.blockTables(), l.blockTables() + 4));
  }

  @Test
  void decodeSectionsAreSizedByTheBucketAndTheGreedyKeysStartAtZero() {
    StepLayout l = new StepLayout(8, 4, 4, 3, 16);
    Arrays.fill(l.data, 7);
    l.fillDecode(List.of(new SequenceChunk(1, new int[] {9}, 3, new int[] {2}, true)), 2);
    assertEquals(0, l.greedyKeys());
    assertArrayEquals(new int[4], Arrays.copyOf(l.data, 4), "two zero keys");
    assertEquals(4, l.tokens());
    assertEquals(6, l.positions());
    assertEquals(14, l.logitRows());
    assertEquals(16, l.blockTables());
    assertEquals(16 + 2 * 3, l.used());
    assertEquals(9, l.data[l.tokens()]);
    assertTrue(l.decode);
    l.fillEager(List.of(new SequenceChunk(1, new int[] {9, 8}, 0, new int[] {2}, true)));
    assertFalse(l.decode);
    assertEquals(8, l.tokens());
    assertEquals(l.data.length, l.used());
  }

  @Test
  void verificationChunksGetALogitsRowPerVerifiedPosition() {
    StepLayout l = new StepLayout(16, 2, 6, 2, 4);
    l.fillEager(
        List.of(
            new SequenceChunk(1, new int[] {5, 6, 7, 8}, 3, new int[] {2, 3}, 4),
            new SequenceChunk(2, new int[] {9}, 0, new int[] {4}, 1)));
    assertEquals(5, l.numLogitRows);
    assertArrayEquals(
        new int[] {0, 1, 2, 3, 4}, Arrays.copyOfRange(l.data, l.logitRows(), l.logitRows() + 5));
    assertArrayEquals(new int[] {0, 0, 0, 0, 1}, Arrays.copyOf(l.logitChunk, 5));
    assertEquals(2 * 6, l.tokens(), "greedy keys sized by the logits rows");
    assertThrows(
        InvalidInputException.class,
        () ->
            l.fillEager(
                List.of(
                    new SequenceChunk(1, new int[] {5, 6, 7, 8}, 0, new int[] {2}, 4),
                    new SequenceChunk(2, new int[] {1, 2, 3}, 0, new int[] {4}, 3))),
        "seven logits rows do not fit six");
  }

  @Test
  void verificationStepsPadEachSequenceToKPlusOneRowsAndTheBatchToItsBucket() {
    StepLayout l = new StepLayout(32, 4, 32, 2, 4);
    l.fillVerify(
        List.of(
            new SequenceChunk(1, new int[] {5, 6, 7}, 5, new int[] {2, 3}, 3),
            new SequenceChunk(2, new int[] {9}, 2, new int[] {4}, 1)),
        4,
        2);
    int[] d = l.data;
    assertEquals(12, l.numTokens);
    assertEquals(12, l.numLogitRows);
    assertFalse(l.decode, "rows of one sequence read each other's K/V: no early reads");
    assertArrayEquals(
        new int[] {5, 6, 7, 9, 0, 0, 0, 0, 0, 0, 0, 0},
        Arrays.copyOfRange(d, l.tokens(), l.tokens() + 12));
    assertArrayEquals(
        new int[] {5, 6, 7, 2, 0, 0, 0, 0, 0, 0, 0, 0},
        Arrays.copyOfRange(d, l.positions(), l.positions() + 12));
    // Position 6 is slot 2 of block 3 (16 + 2 = 14 in a pool of 4-slot blocks); padding: null slot
    // 0.
    assertArrayEquals(
        new int[] {13, 14, 15, 18, 0, 0, 0, 0, 0, 0, 0, 0},
        Arrays.copyOfRange(d, l.slots(), l.slots() + 12));
    assertArrayEquals(
        new int[] {0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3},
        Arrays.copyOfRange(d, l.rowSeq(), l.rowSeq() + 12));
    int none = StepLayout.NO_CHUNK;
    assertArrayEquals(
        new int[] {0, 0, 0, 1, none, none, none, none, none, none, none, none},
        Arrays.copyOf(l.logitChunk, 12));
    assertArrayEquals(
        new int[] {2, 3, 4, 0, 0, 0, 0, 0},
        Arrays.copyOfRange(d, l.blockTables(), l.blockTables() + 8));
    assertThrows(
        InvalidInputException.class,
        () ->
            l.fillVerify(
                List.of(new SequenceChunk(1, new int[] {5, 6, 7, 8}, 0, new int[] {2}, 4)), 4, 2),
        "four positions do not fit k = 2");
    assertThrows(
        InvalidInputException.class,
        () -> l.fillVerify(List.of(), 4, 8),
        "36 rows do not fit 32 tokens");
  }

  /**
   * A draft's first round (two positions, the logits of the last only) and a prompt chunk that
   * wants none fit a verification bucket: their rows run, but only wanted rows belong to a chunk.
   */
  @Test
  void verificationStepsTakeChunksWantingOnlyTheirLastLogits() {
    StepLayout l = new StepLayout(32, 4, 32, 2, 4);
    l.fillVerify(
        List.of(
            new SequenceChunk(1, new int[] {5, 6}, 6, new int[] {2, 3}, 1),
            new SequenceChunk(2, new int[] {9, 10}, 0, new int[] {4}, 0),
            new SequenceChunk(3, new int[] {11}, 4, new int[] {5, 6}, 1)),
        4,
        1);
    assertEquals(8, l.numTokens);
    assertEquals(8, l.numLogitRows, "every row of the bucket is scored");
    int none = StepLayout.NO_CHUNK;
    assertArrayEquals(
        new int[] {none, 0, none, none, 2, none, none, none}, Arrays.copyOf(l.logitChunk, 8));
    assertArrayEquals(
        new int[] {5, 6, 9, 10, 11, 0, 0, 0},
        Arrays.copyOfRange(l.data, l.tokens(), l.tokens() + 8));
    assertArrayEquals(
        new int[] {6, 7, 0, 1, 4, 0, 0, 0},
        Arrays.copyOfRange(l.data, l.positions(), l.positions() + 8));
    assertArrayEquals(
        new int[] {14, 15, 16, 17, 24, 0, 0, 0},
        Arrays.copyOfRange(l.data, l.slots(), l.slots() + 8));
  }

  @Test
  void greedyKeysNameTheLowestIndexOfTheLargestLogit() {
    long bits = Float.floatToIntBits(1.5f) | 0x80000000L;
    assertEquals(5, StepLayout.greedyToken(bits << 32 | (0xffffffffL - 5)));
    assertEquals(128255, StepLayout.greedyToken(bits << 32 | (0xffffffffL - 128255)));
    assertEquals(0, StepLayout.greedyToken(0));
    assertEquals(ModelRunner.NON_FINITE, StepLayout.greedyToken(-1L), "a non-finite row");
    // Unsigned, as atomicMax compares: the lower index makes the larger key.
    assertTrue(
        Long.compareUnsigned(bits << 32 | (0xffffffffL - 5), bits << 32 | (0xffffffffL - 9)) > 0);
  }

  @Test
  void layoutRefusesStepsLargerThanItsBuffers() {
    StepLayout l = new StepLayout(4, 2, 2, 2, 16);
    assertThrows(
        InvalidInputException.class,
        () -> l.fillEager(List.of(new SequenceChunk(1, new int[5], 0, new int[] {1}, true))));
    assertThrows(
        InvalidInputException.class,
        () ->
            l.fillEager(List.of(new SequenceChunk(1, new int[1], 40, new int[] {1, 2, 3}, true))));
    assertThrows(
        InvalidInputException.class,
        () ->
            l.fillDecode(
                List.of(
                    new SequenceChunk(1, new int[1], 0, new int[] {1}, true),
                    new SequenceChunk(2, new int[1], 0, new int[] {2}, true),
                    new SequenceChunk(3, new int[1], 0, new int[] {3}, true)),
                2));
  }

  @Test
  void kernelArgumentsAreCheckedAgainstTheSignature() {
    Kernel.checkArguments("k", "pilf", 5L, 3, 7L, 1.5f);
    BackendException count =
        assertThrows(BackendException.class, () -> Kernel.checkArguments("k", "pi", 5L));
    assertTrue(count.getMessage().contains("takes 2 arguments"), count.getMessage());
    BackendException nullPointer =
        assertThrows(BackendException.class, () -> Kernel.checkArguments("k", "p", 0L));
    assertTrue(nullPointer.getMessage().contains("device pointer"), nullPointer.getMessage());
    assertThrows(BackendException.class, () -> Kernel.checkArguments("k", "i", 5L));
    assertThrows(BackendException.class, () -> Kernel.checkArguments("k", "f", Float.NaN));
    assertThrows(BackendException.class, () -> Kernel.checkArguments("k", "f", 1.0));
    assertThrows(BackendException.class, () -> Kernel.checkArguments("k", "p", (Object) null));
  }

  @Test
  void launchShapesAreCheckedAgainstTheDeviceLimits() {
    Kernel.checkShape("k", 1, 1, 1, 1024);
    Kernel.checkShape("k", (1L << 31) - 1, 65535, 65535, 1);
    assertThrows(BackendException.class, () -> Kernel.checkShape("k", 1, 1, 1, 2048));
    assertThrows(BackendException.class, () -> Kernel.checkShape("k", 0, 1, 1, 256));
    assertThrows(BackendException.class, () -> Kernel.checkShape("k", 1L << 31, 1, 1, 256));
    assertThrows(BackendException.class, () -> Kernel.checkShape("k", 1, 65536, 1, 256));
    assertThrows(BackendException.class, () -> Kernel.checkShape("k", 1, 1, 0, 256));
  }

  @Test
  void programmaticLaunchAttributeHasTheDriverLayout() {
    try (BytePointer a = Kernel.programmaticSerializationAttribute()) {
      assertEquals(Kernel.ATTRIBUTE_BYTES, a.capacity());
      assertEquals(6, a.getInt(0), "CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION");
      assertEquals(1, a.getInt(8), "programmaticStreamSerializationAllowed");
      for (int i = 4; i < Kernel.ATTRIBUTE_BYTES; i++) {
        if (i < 8 || i >= 12) {
          assertEquals(0, a.get(i), "byte " + i);
        }
      }
    }
  }

  @Test
  void optionsRejectNonsense() {
    assertThrows(
        InvalidInputException.class, () -> GpuRunnerOptions.defaults().withKvUtilization(0));
    assertThrows(
        InvalidInputException.class, () -> GpuRunnerOptions.defaults().withKvUtilization(1.5));
    assertThrows(InvalidInputException.class, () -> GpuRunnerOptions.defaults().withKvBlocks(1));
    assertThrows(InvalidInputException.class, () -> GpuRunnerOptions.defaults().withMaxNumSeqs(0));
    assertEquals(StorageType.F16, GpuRunnerOptions.defaults().storage());
    assertEquals(0.90, GpuRunnerOptions.defaults().kvUtilization());
    assertTrue(GpuRunnerOptions.defaults().skinnyGemm());
    assertTrue(GpuRunnerOptions.defaults().programmaticLaunch());
    GpuRunnerOptions cublas = GpuRunnerOptions.defaults().withSkinnyGemm(false);
    assertFalse(cublas.withStorage(StorageType.F32).withCudaGraphs(false).skinnyGemm());
    GpuRunnerOptions plain = cublas.withProgrammaticLaunch(false);
    assertFalse(plain.withMaxNumSeqs(8).programmaticLaunch());
    assertFalse(plain.withMaxNumSeqs(8).skinnyGemm());
  }
}
