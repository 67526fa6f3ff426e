package io.kiln.execution.llm.gpu;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BackendException;
import org.junit.jupiter.api.Test;

/** The skinny GEMM's host side, which needs no device: which steps it takes, geometry, checks. */
class SkinnyGemmTest {
  @Test
  void takesStepsOfOneToEightTokens() {
    assertFalse(SkinnyGemm.handles(0));
    assertTrue(SkinnyGemm.handles(1));
    assertTrue(SkinnyGemm.handles(8));
    assertFalse(SkinnyGemm.handles(9));
  }

  @Test
  void blocksShrinkUntilEveryMultiprocessorHasTwo() {
    // Llama-3.2-1B on 132 SMs: o/down 2048, qkv 3072, lm_head 128256 rows: full blocks.
    assertEquals(4, SkinnyGemm.warpsPerBlock(2048, 132));
    assertEquals(4, SkinnyGemm.warpsPerBlock(3072, 132));
    assertEquals(4, SkinnyGemm.warpsPerBlock(128256, 132));
    assertEquals(2, SkinnyGemm.warpsPerBlock(1000, 132));
    assertEquals(1, SkinnyGemm.warpsPerBlock(512, 132));
    assertEquals(1, SkinnyGemm.warpsPerBlock(7, 132));
    assertEquals(4, SkinnyGemm.warpsPerBlock(7, 1));
    assertEquals(1, SkinnyGemm.warpsPerBlock(1, 1));
  }

  @Test
  void tensorCoreBlocksTakeSixteenRowsOrEightPairs() {
    // Llama-3.2-1B on 132 SMs: o/down 2048 rows and the QKV's 1536 RoPE pairs are too few tiles
    // for 4 blocks per multiprocessor, so 8 warps split their rows; gate/up and the LM head are
    // not.
    SkinnyGemm.TensorCoreGeometry o = SkinnyGemm.TensorCoreGeometry.of(2048, 16, 132);
    assertEquals(128, o.blocks());
    assertEquals(8, o.warpsPerBlock());
    assertEquals(192, SkinnyGemm.TensorCoreGeometry.of(1536, 8, 132).blocks());
    SkinnyGemm.TensorCoreGeometry gateUp = SkinnyGemm.TensorCoreGeometry.of(8192, 8, 132);
    assertEquals(1024, gateUp.blocks());
    assertEquals(4, gateUp.warpsPerBlock());
    assertEquals(8016, SkinnyGemm.TensorCoreGeometry.of(128256, 16, 132).blocks());
    assertEquals(1, SkinnyGemm.TensorCoreGeometry.of(7, 16, 132).blocks());
    assertEquals(2, SkinnyGemm.TensorCoreGeometry.of(17, 16, 132).blocks());
  }

  @Test
  void tensorCoresNeedSixteenByteRows() {
    assertTrue(SkinnyGemm.TensorCoreGeometry.fits(2048, 256, 4096));
    assertFalse(SkinnyGemm.TensorCoreGeometry.fits(2050, 256, 4096));
    assertFalse(SkinnyGemm.TensorCoreGeometry.fits(2048, 258, 4096));
    assertFalse(SkinnyGemm.TensorCoreGeometry.fits(2048, 256, 4104));
  }

  @Test
  void longRowsAreSplitOverTwoOrFourWarps() {
    assertEquals(1, SkinnyGemm.warpsPerRow(2048, 2));
    assertEquals(2, SkinnyGemm.warpsPerRow(2048, 4));
    assertEquals(2, SkinnyGemm.warpsPerRow(8191, 2));
    assertEquals(4, SkinnyGemm.warpsPerRow(8192, 2));
    assertEquals(4, SkinnyGemm.warpsPerRow(1 << 20, 4));
    assertEquals(1, SkinnyGemm.warpsPerRow(1, 2));
  }

  @Test
  void blocksCoverEveryRowWithWholeRowsPerBlock() {
    // Llama-3.2-1B on 132 SMs, fp16: the down projection, QKV pairs, the LM head.
    assertEquals(new SkinnyGemm.Geometry(4, 4, 2048), SkinnyGemm.Geometry.of(2048, 8192, 2, 132));
    assertEquals(new SkinnyGemm.Geometry(1, 4, 384), SkinnyGemm.Geometry.of(1536, 2048, 2, 132));
    assertEquals(
        new SkinnyGemm.Geometry(1, 4, 32064), SkinnyGemm.Geometry.of(128256, 2048, 2, 132));
    // Narrow layers: blocks shrink, but never below one row's warps.
    assertEquals(new SkinnyGemm.Geometry(4, 4, 7), SkinnyGemm.Geometry.of(7, 8192, 2, 132));
    assertEquals(new SkinnyGemm.Geometry(2, 2, 7), SkinnyGemm.Geometry.of(7, 2048, 4, 132));
    assertEquals(new SkinnyGemm.Geometry(1, 1, 7), SkinnyGemm.Geometry.of(7, 64, 2, 132));
    assertEquals(new SkinnyGemm.Geometry(1, 4, 2), SkinnyGemm.Geometry.of(7, 64, 2, 1));
    assertEquals(
        new SkinnyGemm.Geometry(1, 1, Integer.MAX_VALUE),
        SkinnyGemm.Geometry.of(Integer.MAX_VALUE, 1, 2, Integer.MAX_VALUE / 2 + 1));
  }

  @Test
  void badShapesAreTypedErrors() {
    assertDoesNotThrow(() -> SkinnyGemm.checkShape(8, 1, 1));
    assertThrows(BackendException.class, () -> SkinnyGemm.checkShape(0, 64, 64));
    assertThrows(BackendException.class, () -> SkinnyGemm.checkShape(9, 64, 64));
    assertThrows(BackendException.class, () -> SkinnyGemm.checkShape(1, 0, 64));
    assertThrows(BackendException.class, () -> SkinnyGemm.checkShape(1, 64, 0));
    // The normed products read the fp32 residual stream in 16-byte vectors.
    assertThrows(
        BackendException.class,
        () -> SkinnyGemm.launchNormed(null, null, 132, 1, 64, 64, 256, 8, 256, 1e-5f));
  }

  /** The int8 LM head is checked before anything is launched: no kernel is needed to fail. */
  @Test
  void int8LogitsNeedWholeVectorsAlignedOperandsAndAlignedKeys() {
    long aligned = 1L << 20;
    assertThrows(
        BackendException.class,
        () ->
            SkinnyGemm.launchLogitsInt8(
                null, null, 132, 1, 24, 8, aligned, aligned, aligned, aligned, aligned),
        "24 codes a row");
    assertThrows(
        BackendException.class,
        () ->
            SkinnyGemm.launchLogitsInt8(
                null, null, 132, 1, 32, 8, aligned, aligned + 8, aligned, aligned, aligned),
        "activations off the 16-byte grid");
    assertThrows(
        BackendException.class,
        () ->
            SkinnyGemm.launchLogitsInt8(
                null, null, 132, 1, 32, 8, aligned, aligned, aligned + 4, aligned, aligned),
        "codes off the 16-byte grid");
    assertThrows(
        BackendException.class,
        () ->
            SkinnyGemm.launchLogitsInt8(
                null, null, 132, 1, 32, 8, aligned, aligned, aligned, aligned, aligned + 4),
        "keys off the 8-byte grid");
    assertThrows(
        BackendException.class,
        () ->
            SkinnyGemm.launchLogitsInt8(
                null, null, 132, 9, 32, 8, aligned, aligned, aligned, aligned, aligned),
        "nine rows");
  }
}
