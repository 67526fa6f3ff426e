package io.kiln.execution.llm.gpu;

import static io.kiln.execution.llm.gpu.GpuTests.floats;
import static io.kiln.execution.llm.gpu.GpuTests.ints;
import static io.kiln.execution.llm.gpu.GpuTests.poisoned;
import static io.kiln.execution.llm.gpu.GpuTests.random;
import static io.kiln.execution.llm.gpu.GpuTests.read;
import static io.kiln.execution.llm.gpu.GpuTests.store;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The skinny products that absorb a neighbouring kernel, against the kernels they replace on fresh
 * random inputs with poisoned outputs: the residual add after a product, and the RMSNorm before
 * one.
 */
@Tag("gpu")
class SkinnyFusionTest {
  private static CudaModule module;

  @BeforeAll
  static void load() {
    GpuTests.assumeGpu();
    module = CudaModule.load();
  }

  @AfterAll
  static void unload() {
    if (module != null) {
      module.close();
    }
  }

  /**
   * x += round(a . w^T) in one kernel against the plain product, then residual_add: the same sums
   * in the same order, so equal bits.
   */
  @ParameterizedTest(name = "{0} m={1} in={2} out={3}")
  @CsvSource({
    "F32, 1, 2048, 2048",
    "F16, 1, 8192, 2048",
    "F16, 3, 264, 100",
    "F32, 8, 520, 33",
  })
  void residualProductEqualsProductThenResidualAdd(StorageType st, int m, int in, int out) {
    Kernels k = new Kernels(module, st, 64);
    SplittableRandom rnd = new SplittableRandom(17L * m + in + 3L * out + st.ordinal());
    float[] residual = random(rnd, m * out, 2);
    int sms = Cuda.multiprocessors();
    try (GpuTests.Stored a = store(k, st, random(rnd, m * in, 1));
        GpuTests.Stored w = store(k, st, random(rnd, out * in, 0.05));
        DeviceBuffer product = poisoned(st, (long) m * out);
        DeviceBuffer x1 = floats(residual);
        DeviceBuffer x2 = floats(residual)) {
      long aa = a.buffer().address();
      long wa = w.buffer().address();
      SkinnyGemm.launch(k.skinnyGemm, null, sms, m, in, out, product.address(), aa, wa);
      k.residualAdd.launch1d(
          null, (long) m * out, 256, x1.address(), product.address(), (long) m * out);
      SkinnyGemm.launch(k.skinnyGemmResidual, null, sms, m, in, out, x2.address(), aa, wa);
      float[] expected = read(k, StorageType.F32, x1, m * out);
      float[] got = read(k, StorageType.F32, x2, m * out);
      String what = "skinny gemm residual " + st + " " + m + "x" + in + "x" + out;
      for (int i = 0; i < got.length; i++) {
        assertFalse(Float.isNaN(got[i]), what + ": element " + i);
        assertEquals(
            Float.floatToIntBits(expected[i]), Float.floatToIntBits(got[i]), what + ": " + i);
        assertTrue(got[i] != residual[i] || expected[i] == residual[i], what + ": not added");
      }
    }
  }

  enum Normed {
    SILU,
    LOGITS,
    ROPE_KV
  }

  /**
   * The one-row products on rmsnorm(src) against rmsnorm (launched with the product's block size,
   * so its sum of squares runs in the same order) followed by the plain product: within an ulp or
   * two in fp32, within a rounding of the normed fp16 activations in fp16.
   */
  @ParameterizedTest(name = "{0} {1} in={2} out={3}")
  @CsvSource({
    "F32, SILU, 2048, 8192",
    "F16, SILU, 2048, 8192",
    "F16, SILU, 520, 300",
    "F32, LOGITS, 2048, 5000",
    "F16, LOGITS, 2048, 128256",
    "F32, ROPE_KV, 2048, 3072",
    "F16, ROPE_KV, 2048, 3072",
    "F16, ROPE_KV, 264, 768",
  })
  void normedProductEqualsRmsnormThenProduct(StorageType st, Normed kind, int in, int out) {
    int hd = 64;
    Kernels k = new Kernels(module, st, hd);
    SplittableRandom rnd =
        new SplittableRandom(29L * in + out + 7L * kind.ordinal() + st.ordinal());
    int sms = Cuda.multiprocessors();
    float eps = 1e-5f;
    int weightRows = kind == Normed.SILU ? 2 * out : out;
    int warpRows = kind == Normed.ROPE_KV ? out / 2 : out;
    int threads = 32 * SkinnyGemm.warpsPerBlock(warpRows, sms);
    StorageType yType = kind == Normed.LOGITS ? StorageType.F32 : st;
    int kvHeads = 2;
    int heads = out / hd - 2 * kvHeads;
    int kvDim = kvHeads * hd;
    int slots = 8;
    try (DeviceBuffer src = floats(random(rnd, in, 3));
        DeviceBuffer normWeight = floats(random(rnd, in, 1));
        GpuTests.Stored w = store(k, st, random(rnd, weightRows * in, 0.05));
        DeviceBuffer normed = poisoned(st, in);
        DeviceBuffer y1 = poisoned(yType, out);
        DeviceBuffer y2 = poisoned(yType, out + 1);
        DeviceBuffer positions = ints(new int[] {5});
        DeviceBuffer mapping = ints(new int[] {3});
        DeviceBuffer cos = floats(random(rnd, 8 * hd / 2, 1));
        DeviceBuffer sin = floats(random(rnd, 8 * hd / 2, 1));
        DeviceBuffer kc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer kc2 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc2 = poisoned(st, (long) slots * kvDim)) {
      long wa = w.buffer().address();
      k.rmsnorm.launch(
          null,
          1,
          1,
          1,
          threads,
          0,
          normed.address(),
          src.address(),
          normWeight.address(),
          in,
          eps);
      switch (kind) {
        case SILU -> {
          SkinnyGemm.launch(
              k.skinnyGemmSilu, null, sms, 1, in, out, y1.address(), normed.address(), wa);
          SkinnyGemm.launchNormed(
              k.skinnyGemmSiluNormed,
              null,
              sms,
              st.bytes,
              in,
              out,
              y2.address(),
              src.address(),
              normWeight.address(),
              wa,
              eps);
        }
        case LOGITS -> {
          SkinnyGemm.launch(
              k.skinnyGemmToFloat, null, sms, 1, in, out, y1.address(), normed.address(), wa);
          SkinnyGemm.launchNormed(
              k.skinnyGemmToFloatNormed,
              null,
              sms,
              st.bytes,
              in,
              out,
              y2.address(),
              src.address(),
              normWeight.address(),
              wa,
              eps);
        }
        case ROPE_KV -> {
          SkinnyGemm.launchRopeKv(
              k.skinnyGemmRopeKv,
              null,
              sms,
              1,
              in,
              out,
              y1.address(),
              normed.address(),
              wa,
              positions.address(),
              cos.address(),
              sin.address(),
              kc1.address(),
              vc1.address(),
              mapping.address(),
              heads,
              kvHeads,
              hd);
          SkinnyGemm.launchRopeKvNormed(
              k.skinnyGemmRopeKvNormed,
              null,
              sms,
              st.bytes,
              in,
              out,
              y2.address(),
              src.address(),
              normWeight.address(),
              wa,
              eps,
              positions.address(),
              cos.address(),
              sin.address(),
              kc2.address(),
              vc2.address(),
              mapping.address(),
              heads,
              kvHeads,
              hd);
        }
      }
      String what = "normed skinny gemm " + st + " " + kind + " " + in + "x" + out;
      double tol = st == StorageType.F32 ? 1e-6 : 2e-3;
      float[] expected = read(k, yType, y1, out);
      float[] got = read(k, yType, y2, out + 1);
      assertClose(expected, got, out, tol, what);
      assertTrue(Float.isNaN(got[out]), what + ": wrote past the row");
      if (kind == Normed.ROPE_KV) {
        int n = slots * kvDim;
        assertClose(read(k, st, kc1, n), read(k, st, kc2, n), n, tol, what + " keys");
        assertClose(read(k, st, vc1, n), read(k, st, vc2, n), n, tol, what + " values");
        float[] keys = read(k, st, kc2, n);
        assertFalse(Float.isNaN(keys[3 * kvDim]), what + ": slot 3 written");
        assertTrue(Float.isNaN(keys[2 * kvDim]), what + ": slot 2 untouched");
      }
    }
  }

  /** Equal NaN positions (slots neither kernel wrote) and values within {@code tol}. */
  private static void assertClose(
      float[] expected, float[] got, int count, double tol, String what) {
    for (int i = 0; i < count; i++) {
      if (Float.isNaN(expected[i])) {
        assertTrue(Float.isNaN(got[i]), what + ": element " + i + " written, reference not");
        continue;
      }
      assertFalse(Float.isNaN(got[i]), what + ": element " + i + " never written");
      double err = Math.abs(expected[i] - got[i]);
      assertTrue(
          err <= tol * Math.max(1, Math.abs(expected[i])),
          what + ": element " + i + " expected " + expected[i] + " got " + got[i]);
    }
  }
}
