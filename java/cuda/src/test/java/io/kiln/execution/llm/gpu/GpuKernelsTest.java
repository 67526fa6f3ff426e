package io.kiln.execution.llm.gpu;

import static io.kiln.execution.llm.gpu.GpuTests.floats;
import static io.kiln.execution.llm.gpu.GpuTests.ints;
import static io.kiln.execution.llm.gpu.GpuTests.poisoned;
import static io.kiln.execution.llm.gpu.GpuTests.random;
import static io.kiln.execution.llm.gpu.GpuTests.read;
import static io.kiln.execution.llm.gpu.GpuTests.store;
import static io.kiln.execution.llm.gpu.GpuTests.testKernels;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.BackendException;
import io.kiln.Float16;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.RequiresGpu;
import io.kiln.execution.llm.ModelRunner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every kernel against a plain Java reference on fresh random inputs, fp32 and fp16, with the
 * outputs poisoned (NaN) first so that an element the kernel forgot fails the comparison.
 */
@Tag("gpu")
@RequiresGpu
class GpuKernelsTest {
  private static CudaModule module;

  @BeforeAll
  static void load() {
    GpuTests.assumeGpu();
    module = CudaModule.load();
  }

  @AfterAll
  static void unload() {
    GpuTests.unloadTestKernels();
    if (module != null) {
      module.close();
    }
  }

  private static Kernels kernels(StorageType st, int headDim) {
    return new Kernels(module, st, headDim);
  }

  private static double tolerance(StorageType st) {
    return st == StorageType.F32 ? 1e-5 : 2e-3;
  }

  private static void assertClose(float[] expected, float[] actual, double tol, String what) {
    assertEquals(expected.length, actual.length, what + ": length");
    for (int i = 0; i < expected.length; i++) {
      assertFalse(Float.isNaN(actual[i]), what + ": element " + i + " never written");
      double err = Math.abs(expected[i] - actual[i]);
      assertTrue(
          err <= tol * (1 + Math.abs(expected[i])),
          what + ": element " + i + " expected " + expected[i] + " got " + actual[i]);
    }
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void rmsnormMatchesJava(StorageType st) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(1);
    int rows = 5;
    int dim = 300;
    float[] x = random(rnd, rows * dim, 3);
    float[] w = random(rnd, dim, 1);
    float[] expected = new float[rows * dim];
    for (int r = 0; r < rows; r++) {
      double ss = 0;
      for (int i = 0; i < dim; i++) {
        ss += (double) x[r * dim + i] * x[r * dim + i];
      }
      float scale = (float) (1.0 / Math.sqrt(ss / dim + 1e-5));
      for (int i = 0; i < dim; i++) {
        expected[r * dim + i] = w[i] * (x[r * dim + i] * scale);
      }
    }
    try (DeviceBuffer dx = floats(x);
        DeviceBuffer dw = floats(w);
        DeviceBuffer out = poisoned(st, rows * dim)) {
      k.rmsnorm(null, rows, out.address(), dx.address(), dw.address(), dim, 1e-5f);
      assertClose(expected, read(st, out, rows * dim), tolerance(st), "rmsnorm " + st);
    }
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void embeddingGatherCopiesRows(StorageType st) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(2);
    int vocab = 50;
    int dim = 72;
    int[] tokens = {3, 49, 0, 3, 17};
    try (GpuTests.Stored table = store(k, st, random(rnd, vocab * dim, 1));
        DeviceBuffer dt = ints(tokens);
        DeviceBuffer out = poisoned(StorageType.F32, tokens.length * dim)) {
      k.embeddingGather(
          null, out.address(), table.buffer().address(), dt.address(), tokens.length, dim);
      float[] expected = new float[tokens.length * dim];
      for (int t = 0; t < tokens.length; t++) {
        System.arraycopy(table.values(), tokens[t] * dim, expected, t * dim, dim);
      }
      assertClose(expected, read(StorageType.F32, out, expected.length), 0, "embedding");
    }
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void ropeRotatesQueryAndKeyHeads(StorageType st) {
    Kernels k = kernels(st, 32);
    SplittableRandom rnd = new SplittableRandom(3);
    int n = 6;
    int heads = 4;
    int kvHeads = 2;
    int hd = 32;
    int half = hd / 2;
    int stride = (heads + 2 * kvHeads) * hd;
    int maxPos = 40;
    float[] cos = random(rnd, maxPos * half, 1);
    float[] sin = random(rnd, maxPos * half, 1);
    int[] positions = {0, 5, 39, 12, 12, 1};
    try (GpuTests.Stored qkv = store(k, st, random(rnd, n * stride, 2));
        DeviceBuffer dp = ints(positions);
        DeviceBuffer dc = floats(cos);
        DeviceBuffer ds = floats(sin)) {
      float[] expected = qkv.values().clone();
      for (int t = 0; t < n; t++) {
        for (int h = 0; h < heads + kvHeads; h++) {
          int at = t * stride + h * hd;
          for (int i = 0; i < half; i++) {
            float a = expected[at + i];
            float b = expected[at + half + i];
            float co = cos[positions[t] * half + i];
            float si = sin[positions[t] * half + i];
            expected[at + i] = a * co - b * si;
            expected[at + half + i] = b * co + a * si;
          }
        }
      }
      testKernels(st)
          .rope(
              null,
              qkv.buffer().address(),
              dp.address(),
              dc.address(),
              ds.address(),
              n,
              heads,
              kvHeads,
              hd,
              stride);
      float[] got = read(st, qkv.buffer(), n * stride);
      // The v heads (last kvHeads of each row) must be untouched.
      assertClose(expected, got, tolerance(st), "rope " + st);
    }
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void kvWriteFillsMappedSlotsOnly(StorageType st) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(4);
    int n = 5;
    int kvDim = 48;
    int qDim = 96;
    int stride = qDim + 2 * kvDim;
    int slots = 40;
    int[] mapping = {17, 3, -1, 39, 16};
    try (GpuTests.Stored qkv = store(k, st, random(rnd, n * stride, 1));
        DeviceBuffer dm = ints(mapping);
        DeviceBuffer kc = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc = poisoned(st, (long) slots * kvDim)) {
      testKernels(st)
          .kvWrite(
              null,
              kc.address(),
              vc.address(),
              qkv.buffer().address(),
              dm.address(),
              n,
              kvDim,
              stride,
              qDim,
              qDim + kvDim);
      float[] keys = read(st, kc, slots * kvDim);
      float[] values = read(st, vc, slots * kvDim);
      Set<Integer> written = new HashSet<>();
      for (int t = 0; t < n; t++) {
        if (mapping[t] < 0) {
          continue;
        }
        written.add(mapping[t]);
        for (int e = 0; e < kvDim; e++) {
          assertEquals(qkv.values()[t * stride + qDim + e], keys[mapping[t] * kvDim + e], 0);
          assertEquals(
              qkv.values()[t * stride + qDim + kvDim + e], values[mapping[t] * kvDim + e], 0);
        }
      }
      for (int s = 0; s < slots; s++) {
        if (!written.contains(s)) {
          assertTrue(Float.isNaN(keys[s * kvDim]), "slot " + s + " must stay untouched");
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void siluMulBiasResidualGatherAndCasts(StorageType st) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(5);
    int n = 3;
    int ff = 130;
    try (GpuTests.Stored gu = store(k, st, random(rnd, n * 2 * ff, 4));
        DeviceBuffer out = poisoned(st, n * ff)) {
      k.siluMul(null, out.address(), gu.buffer().address(), n, ff);
      float[] expected = new float[n * ff];
      for (int t = 0; t < n; t++) {
        for (int j = 0; j < ff; j++) {
          double g = gu.values()[t * 2 * ff + j];
          expected[t * ff + j] =
              (float) (g / (1 + Math.exp(-g))) * gu.values()[t * 2 * ff + ff + j];
        }
      }
      assertClose(expected, read(st, out, n * ff), tolerance(st), "silu_mul " + st);
    }
    int cols = 70;
    try (GpuTests.Stored y = store(k, st, random(rnd, n * cols, 1));
        GpuTests.Stored bias = store(k, st, random(rnd, cols, 1))) {
      float[] expected = y.values().clone();
      for (int i = 0; i < expected.length; i++) {
        expected[i] += bias.values()[i % cols];
      }
      k.addBias(null, y.buffer().address(), bias.buffer().address(), n, cols);
      assertClose(expected, read(st, y.buffer(), n * cols), tolerance(st), "add_bias " + st);
    }
    float[] x = random(rnd, n * cols, 1);
    try (DeviceBuffer dx = floats(x);
        GpuTests.Stored delta = store(k, st, random(rnd, n * cols, 1))) {
      k.residualAdd(null, dx.address(), delta.buffer().address(), (long) n * cols);
      float[] expected = x.clone();
      for (int i = 0; i < expected.length; i++) {
        expected[i] += delta.values()[i];
      }
      assertClose(expected, read(StorageType.F32, dx, n * cols), 1e-6, "residual_add " + st);
    }
    int[] rows = {2, 0};
    try (DeviceBuffer dx = floats(x);
        DeviceBuffer dr = ints(rows);
        DeviceBuffer out = poisoned(StorageType.F32, rows.length * cols)) {
      k.gatherRows(null, out.address(), dx.address(), dr.address(), rows.length, cols);
      float[] expected = new float[rows.length * cols];
      for (int r = 0; r < rows.length; r++) {
        System.arraycopy(x, rows[r] * cols, expected, r * cols, cols);
      }
      assertClose(expected, read(StorageType.F32, out, expected.length), 0, "gather_rows");
    }
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void fusedRopeKvWriteEqualsRopeThenKvWrite(StorageType st) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(8);
    int n = 5;
    int heads = 8;
    int kvHeads = 2;
    int hd = 64;
    int half = hd / 2;
    int qDim = heads * hd;
    int kvDim = kvHeads * hd;
    int stride = qDim + 2 * kvDim;
    int slots = 32;
    float[] cos = random(rnd, 50 * half, 1);
    float[] sin = random(rnd, 50 * half, 1);
    float[] input = random(rnd, n * stride, 2);
    int[] positions = {0, 3, 49, 7, 7};
    int[] mapping = {31, 0, 5, -1, 6};
    try (GpuTests.Stored a = store(k, st, input);
        GpuTests.Stored b = store(k, st, input);
        DeviceBuffer dp = ints(positions);
        DeviceBuffer dm = ints(mapping);
        DeviceBuffer dc = floats(cos);
        DeviceBuffer ds = floats(sin);
        DeviceBuffer kc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer kc2 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc2 = poisoned(st, (long) slots * kvDim)) {
      testKernels(st)
          .rope(
              null,
              a.buffer().address(),
              dp.address(),
              dc.address(),
              ds.address(),
              n,
              heads,
              kvHeads,
              hd,
              stride);
      testKernels(st)
          .kvWrite(
              null,
              kc1.address(),
              vc1.address(),
              a.buffer().address(),
              dm.address(),
              n,
              kvDim,
              stride,
              qDim,
              qDim + kvDim);
      k.ropeKvWrite(
          null,
          b.buffer().address(),
          dp.address(),
          dc.address(),
          ds.address(),
          kc2.address(),
          vc2.address(),
          dm.address(),
          n,
          heads,
          kvHeads,
          hd,
          stride);
      assertArrayEquals(read(st, a.buffer(), n * stride), read(st, b.buffer(), n * stride));
      float[] k2 = assertPoolsSame(st, kc1, vc1, kc2, vc2, slots * kvDim, "rope_kv_write");
      assertFalse(Float.isNaN(k2[31 * kvDim]), "slot 31 written");
      assertTrue(Float.isNaN(k2[1 * kvDim]), "slot 1 untouched");
    }
  }

  /**
   * The QKV projection with RoPE and the pool write fused, against its two-kernel definition (the
   * plain skinny GEMM, then rope_kv_write): the QKV rows and every pool slot bit for bit, the slots
   * of negative mappings untouched.
   */
  @ParameterizedTest(name = "{0} m={1} head_dim={2} overlapped={3}")
  @CsvSource({
    "F32, 1, 64, false",
    "F16, 1, 64, false",
    "F16, 5, 128, false",
    "F32, 8, 32, false",
    "F16, 1, 64, true",
    "F32, 5, 128, true"
  })
  void skinnyGemmRopeKvEqualsGemmThenRopeKvWrite(
      StorageType st, int m, int hd, boolean overlapped) {
    Kernels k =
        overlapped
            ? new Kernels(module, st, hd, Cuda.programmaticLaunchSupported())
            : kernels(st, hd);
    SplittableRandom rnd = new SplittableRandom(77L * m + hd + st.ordinal());
    int heads = 8;
    int kvHeads = 2;
    int half = hd / 2;
    int kvDim = kvHeads * hd;
    int out = (heads + 2 * kvHeads) * hd;
    int in = 264;
    int slots = 40;
    int[] positions = Arrays.copyOf(new int[] {0, 3, 49, 7, 7, 12, 1, 30}, m);
    int[] mapping = Arrays.copyOf(new int[] {31, 0, 5, -1, 6, 39, 2, 17}, m);
    int sms = Cuda.multiprocessors();
    try (GpuTests.Stored x = store(k, st, random(rnd, m * in, 1));
        GpuTests.Stored w = store(k, st, random(rnd, out * in, 0.1));
        DeviceBuffer dp = ints(positions);
        DeviceBuffer dm = ints(mapping);
        DeviceBuffer dc = floats(random(rnd, 50 * half, 1));
        DeviceBuffer ds = floats(random(rnd, 50 * half, 1));
        DeviceBuffer y1 = poisoned(st, (long) m * out);
        DeviceBuffer y2 = poisoned(st, (long) m * out);
        DeviceBuffer kc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer kc2 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc2 = poisoned(st, (long) slots * kvDim)) {
      long xa = x.buffer().address();
      long wa = w.buffer().address();
      k.skinnyGemm(null, sms, m, in, out, y1.address(), xa, wa);
      k.ropeKvWrite(
          null,
          y1.address(),
          dp.address(),
          dc.address(),
          ds.address(),
          kc1.address(),
          vc1.address(),
          dm.address(),
          m,
          heads,
          kvHeads,
          hd,
          out);
      k.skinnyGemmRopeKv(
          null,
          sms,
          m,
          in,
          out,
          y2.address(),
          xa,
          wa,
          new SkinnyGemm.RopeKv(
              dp.address(),
              dc.address(),
              ds.address(),
              kc2.address(),
              vc2.address(),
              dm.address(),
              heads,
              kvHeads,
              hd));
      String what = "skinny gemm rope kv " + st + " m=" + m + " hd=" + hd;
      float[] a = read(st, y1, m * out);
      float[] b = read(st, y2, m * out);
      // The same sums, rotated with the same roundings: equal bits.
      for (int i = 0; i < a.length; i++) {
        assertFalse(Float.isNaN(b[i]), what + ": qkv element " + i + " never written");
        assertSame(a[i], b[i], what + ": qkv " + i);
      }
      float[] k2 = assertPoolsSame(st, kc1, vc1, kc2, vc2, slots * kvDim, what);
      assertFalse(Float.isNaN(k2[31 * kvDim]), what + ": slot 31 written");
      assertTrue(Float.isNaN(k2[3 * kvDim]), what + ": slot 3 untouched");
    }
    assertThrows(
        BackendException.class,
        () ->
            k.skinnyGemmRopeKv(
                null,
                sms,
                1,
                64,
                100,
                1L,
                1L,
                1L,
                new SkinnyGemm.RopeKv(1L, 1L, 1L, 1L, 1L, 1L, 8, 2, 64)),
        "a row width that is not the heads");
  }

  /**
   * Two K/V pools slot by slot, equal bits (untouched slots are NaN in both); returns the second
   * key pool for checks of which slots were written.
   */
  private static float[] assertPoolsSame(
      StorageType st,
      DeviceBuffer keys1,
      DeviceBuffer values1,
      DeviceBuffer keys2,
      DeviceBuffer values2,
      int count,
      String what) {
    float[] k1 = read(st, keys1, count);
    float[] k2 = read(st, keys2, count);
    float[] v1 = read(st, values1, count);
    float[] v2 = read(st, values2, count);
    for (int i = 0; i < count; i++) {
      assertSame(k1[i], k2[i], what + ": key " + i);
      assertSame(v1[i], v2[i], what + ": value " + i);
    }
    return k2;
  }

  /** The poison (NaN) still after the first {@code rows} rows of {@code width}. */
  private static void assertNothingPast(float[] got, int rows, int width, String what) {
    for (int i = rows * width; i < got.length; i++) {
      assertTrue(Float.isNaN(got[i]), what + ": wrote past row " + rows + " at " + i);
    }
  }

  /** Equal bits (NaN for both where neither kernel wrote). */
  private static void assertSame(float expected, float actual, String what) {
    assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(actual), what);
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void fusedAddRmsnormEqualsResidualAddThenRmsnorm(StorageType st) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(9);
    int rows = 4;
    int dim = 520;
    float[] x = random(rnd, rows * dim, 2);
    float[] w = random(rnd, dim, 1);
    try (GpuTests.Stored delta = store(k, st, random(rnd, rows * dim, 2));
        DeviceBuffer x1 = floats(x);
        DeviceBuffer x2 = floats(x);
        DeviceBuffer dw = floats(w);
        DeviceBuffer out1 = poisoned(st, rows * dim);
        DeviceBuffer out2 = poisoned(st, rows * dim)) {
      k.residualAdd(null, x1.address(), delta.buffer().address(), (long) rows * dim);
      k.rmsnorm(null, rows, out1.address(), x1.address(), dw.address(), dim, 1e-6f);
      k.addRmsnorm(
          null,
          rows,
          x2.address(),
          delta.buffer().address(),
          out2.address(),
          dw.address(),
          dim,
          1e-6f);
      assertArrayEquals(
          read(StorageType.F32, x1, rows * dim), read(StorageType.F32, x2, rows * dim));
      float[] o1 = read(st, out1, rows * dim);
      assertClose(o1, read(st, out2, rows * dim), 1e-6, "add_rmsnorm " + st);
    }
  }

  /**
   * Paged attention over a shuffled pool: rows of several sequences (decode rows and prefill rows
   * of one sequence at increasing positions), with and without splits, sliding window, GQA.
   */
  @ParameterizedTest
  @CsvSource({
    "F32, 32, 4, 2, 1, 0",
    "F32, 32, 4, 2, 5, 0",
    "F16, 32, 4, 2, 16, 0",
    "F32, 64, 32, 8, 1, 0",
    "F16, 64, 32, 8, 7, 0",
    "F32, 128, 8, 1, 3, 0",
    "F16, 128, 8, 8, 1, 0",
    "F32, 64, 8, 2, 4, 37",
  })
  void pagedAttentionMatchesJava(
      StorageType st, int hd, int heads, int kvHeads, int splits, int window) {
    Kernels k = kernels(st, hd);
    SplittableRandom rnd = new SplittableRandom(hd * 31L + heads + splits);
    int bs = 16;
    int numBlocks = 64;
    int kvDim = kvHeads * hd;
    int qDim = heads * hd;
    int maxBlocks = 20;
    // Three sequences: lengths 1, 150 and 300 positions.
    int[] seqLen = {1, 150, 300};
    List<Integer> free = new ArrayList<>();
    for (int b = 1; b < numBlocks; b++) {
      free.add(b);
    }
    Collections.shuffle(free, new java.util.Random(hd + splits));
    int[] tables = new int[seqLen.length * maxBlocks];
    int next = 0;
    for (int s = 0; s < seqLen.length; s++) {
      for (int b = 0; b < (seqLen[s] + bs - 1) / bs; b++) {
        tables[s * maxBlocks + b] = free.get(next++);
      }
    }
    // Rows: decode rows of every sequence, plus prefill-like rows of sequence 1.
    int[] rowSeq = {0, 1, 2, 1, 1, 1};
    int[] ctx = {1, 150, 300, 1, 17, 64};
    int rows = rowSeq.length;
    try (GpuTests.Stored q = store(k, st, random(rnd, rows * qDim, 1));
        GpuTests.Stored kc = store(k, st, random(rnd, numBlocks * bs * kvDim, 1));
        GpuTests.Stored vc = store(k, st, random(rnd, numBlocks * bs * kvDim, 1));
        DeviceBuffer dt = ints(tables);
        DeviceBuffer dr = ints(rowSeq);
        DeviceBuffer dc = ints(ctx);
        DeviceBuffer acc = new DeviceBuffer(4L * rows * heads * splits * hd);
        DeviceBuffer ml = new DeviceBuffer(4L * rows * heads * splits * 2);
        DeviceBuffer out = poisoned(st, (long) rows * qDim)) {
      float scale = (float) (1 / Math.sqrt(hd));
      // decode 1 reads the K/V of all but each row's last position before its wait: same result.
      for (int decode = 0; decode <= 1; decode++) {
        out.fill(0xFF);
        k.pagedAttention(
            null,
            rows,
            q.buffer().address(),
            qDim,
            kc.buffer().address(),
            vc.buffer().address(),
            dt.address(),
            maxBlocks,
            dr.address(),
            dc.address(),
            heads,
            kvHeads,
            bs,
            scale,
            window,
            splits,
            acc.address(),
            ml.address(),
            out.address(),
            qDim,
            decode == 1);
        if (splits > 1) {
          k.attentionCombine(
              null, rows, acc.address(), ml.address(), out.address(), heads, hd, splits, qDim);
        }
        float[] got = read(st, out, rows * qDim);
        float[] expected = new float[rows * qDim];
        int group = heads / kvHeads;
        for (int r = 0; r < rows; r++) {
          for (int h = 0; h < heads; h++) {
            int kvh = h / group;
            int first = window > 0 ? Math.max(0, ctx[r] - window) : 0;
            double[] scores = new double[ctx[r]];
            double max = Double.NEGATIVE_INFINITY;
            for (int p = first; p < ctx[r]; p++) {
              int slot = tables[rowSeq[r] * maxBlocks + p / bs] * bs + p % bs;
              double s = 0;
              for (int d = 0; d < hd; d++) {
                s += q.values()[r * qDim + h * hd + d] * kc.values()[slot * kvDim + kvh * hd + d];
              }
              scores[p] = s * scale;
              max = Math.max(max, scores[p]);
            }
            double sum = 0;
            for (int p = first; p < ctx[r]; p++) {
              scores[p] = Math.exp(scores[p] - max);
              sum += scores[p];
            }
            for (int d = 0; d < hd; d++) {
              double o = 0;
              for (int p = first; p < ctx[r]; p++) {
                int slot = tables[rowSeq[r] * maxBlocks + p / bs] * bs + p % bs;
                o += scores[p] * vc.values()[slot * kvDim + kvh * hd + d];
              }
              expected[r * qDim + h * hd + d] = (float) (o / sum);
            }
          }
        }
        assertClose(
            expected,
            got,
            st == StorageType.F32 ? 1e-5 : 3e-3,
            "attention " + st + " hd " + hd + " decode " + decode);
      }
    }
  }

  @Test
  void argmaxPicksTheFirstLargest() {
    Kernels k = kernels(StorageType.F32, 64);
    SplittableRandom rnd = new SplittableRandom(6);
    int vocab = 128256;
    int rows = 3;
    float[] logits = random(rnd, rows * vocab, 10);
    logits[0 * vocab + 777] = 50;
    logits[1 * vocab + 5] = 50;
    logits[1 * vocab + 100000] = 50; // a tie: the lower id wins
    try (DeviceBuffer dl = floats(logits);
        DeviceBuffer out = ints(new int[] {-1, -1, -1})) {
      k.argmax(null, rows, dl.address(), vocab, out.address());
      GpuTests.sync();
      int[] got = out.downloadInts(rows);
      int best2 = 0;
      for (int i = 1; i < vocab; i++) {
        if (logits[2 * vocab + i] > logits[2 * vocab + best2]) {
          best2 = i;
        }
      }
      assertArrayEquals(new int[] {777, 5, best2}, got);
    }
  }

  /** A row with a NaN or an infinity anywhere gives no token but the non-finite mark. */
  @Test
  void argmaxMarksRowsWithNonFiniteLogits() {
    Kernels k = kernels(StorageType.F32, 64);
    SplittableRandom rnd = new SplittableRandom(16);
    int vocab = 32000;
    int rows = 4;
    float[] logits = random(rnd, rows * vocab, 10);
    logits[0 * vocab + 31999] = Float.NaN;
    logits[1 * vocab + 7] = Float.POSITIVE_INFINITY;
    logits[2 * vocab + 12345] = Float.NEGATIVE_INFINITY;
    logits[3 * vocab + 42] = 50;
    try (DeviceBuffer dl = floats(logits);
        DeviceBuffer out = ints(new int[] {-1, -1, -1, -1})) {
      k.argmax(null, rows, dl.address(), vocab, out.address());
      GpuTests.sync();
      int nf = ModelRunner.NON_FINITE;
      assertArrayEquals(new int[] {nf, nf, nf, 42}, out.downloadInts(rows));
    }
  }

  /** The LM head's fused argmax marks a row whose logits went NaN: no token is read from it. */
  @Test
  void skinnyGemmLogitsMarksNonFiniteRows() {
    Kernels k = kernels(StorageType.F32, 64);
    SplittableRandom rnd = new SplittableRandom(17);
    int sms = Cuda.multiprocessors();
    int in = 64;
    int vocab = 1000;
    float[] xs = random(rnd, in, 1);
    float[] ws = random(rnd, vocab * in, 0.05);
    ws[321 * in + 3] = Float.NaN;
    try (GpuTests.Stored x = store(k, StorageType.F32, xs);
        GpuTests.Stored w = store(k, StorageType.F32, ws);
        DeviceBuffer logits = poisoned(StorageType.F32, vocab);
        DeviceBuffer keys = ints(new int[2])) {
      k.skinnyGemmLogits(
          null,
          sms,
          1,
          in,
          vocab,
          logits.address(),
          x.buffer().address(),
          w.buffer().address(),
          keys.address());
      int[] words = keys.downloadInts(2);
      long key = (long) words[1] << 32 | (words[0] & 0xffffffffL);
      assertEquals(ModelRunner.NON_FINITE, StepLayout.greedyToken(key));
    }
  }

  /**
   * Top-k/top-p sampling with Philox: every draw inside the allowed set, the same (seed, offset)
   * gives the same token, and the empirical distribution follows the renormalized probabilities.
   */
  @Test
  void seededTopKTopPSamplingDrawsFromTheRightSet() {
    Kernels k = kernels(StorageType.F32, 64);
    SplittableRandom rnd = new SplittableRandom(7);
    int vocab = 1000;
    int draws = 8000;
    float temperature = 0.8f;
    int topK = 40;
    float topP = 0.7f;
    float[] row = random(rnd, vocab, 4);
    float[] logits = new float[draws * vocab];
    for (int d = 0; d < draws; d++) {
      System.arraycopy(row, 0, logits, d * vocab, vocab);
    }
    float[] temps = new float[draws];
    int[] ks = new int[draws];
    float[] ps = new float[draws];
    Arrays.fill(temps, temperature);
    Arrays.fill(ks, topK);
    Arrays.fill(ps, topP);
    temps[0] = 0; // greedy row
    // seeds and offsets as two 32-bit ints per 64-bit value (little endian)
    int[] seeds = new int[2 * draws];
    int[] offsets = new int[2 * draws];
    for (int d = 0; d < draws; d++) {
      seeds[2 * d] = 1234;
      offsets[2 * d] = d;
    }
    // Reference: sorted order, top-k, then the smallest prefix reaching top-p.
    Integer[] order = new Integer[vocab];
    for (int i = 0; i < vocab; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (a, b) -> Float.compare(row[b], row[a]));
    double[] probs = new double[topK];
    double sum = 0;
    for (int i = 0; i < topK; i++) {
      probs[i] = Math.exp((row[order[i]] - row[order[0]]) / temperature);
      sum += probs[i];
    }
    int keep = topK;
    double cumulative = 0;
    for (int i = 0; i < topK; i++) {
      cumulative += probs[i] / sum;
      if (cumulative >= topP) {
        keep = i + 1;
        break;
      }
    }
    double kept = 0;
    for (int i = 0; i < keep; i++) {
      kept += probs[i];
    }
    int[] first;
    try (DeviceBuffer dl = floats(logits);
        DeviceBuffer dt = floats(temps);
        DeviceBuffer dk = ints(ks);
        DeviceBuffer dp = floats(ps);
        DeviceBuffer ds = ints(seeds);
        DeviceBuffer doff = ints(offsets);
        DeviceBuffer out = ints(new int[draws])) {
      out.fill(0xFF);
      testKernels(StorageType.F32)
          .sample(
              null,
              draws,
              dl.address(),
              vocab,
              dt.address(),
              dk.address(),
              dp.address(),
              ds.address(),
              doff.address(),
              out.address());
      GpuTests.sync();
      first = out.downloadInts(draws);
      out.fill(0xFF);
      testKernels(StorageType.F32)
          .sample(
              null,
              draws,
              dl.address(),
              vocab,
              dt.address(),
              dk.address(),
              dp.address(),
              ds.address(),
              doff.address(),
              out.address());
      GpuTests.sync();
      assertArrayEquals(first, out.downloadInts(draws), "same seed and offset, same token");
    }
    assertEquals((int) order[0], first[0], "temperature 0 is greedy");
    int[] counts = new int[vocab];
    for (int d = 1; d < draws; d++) {
      counts[first[d]]++;
    }
    Set<Integer> allowed = new HashSet<>();
    for (int i = 0; i < keep; i++) {
      allowed.add(order[i]);
    }
    double tv = 0;
    for (int t = 0; t < vocab; t++) {
      if (counts[t] > 0) {
        assertTrue(allowed.contains(t), "token " + t + " is outside the top-k/top-p set");
      }
    }
    for (int i = 0; i < keep; i++) {
      tv += Math.abs(counts[order[i]] / (double) (draws - 1) - probs[i] / kept);
    }
    assertTrue(tv / 2 < 0.05, "total variation " + tv / 2 + " from the expected distribution");
    assertTrue(
        new HashSet<>(Arrays.asList(Arrays.stream(first).boxed().toArray(Integer[]::new))).size()
            > 1);
  }

  /** The skinny GEMM's three entry points: output in the storage type, with bias, or fp32. */
  enum SkinnyOutput {
    STORAGE,
    STORAGE_WITH_BIAS,
    FLOAT
  }

  static Stream<Arguments> skinnyGemmShapes() {
    Stream.Builder<Arguments> shapes = Stream.builder();
    for (StorageType st : StorageType.values()) {
      for (SkinnyOutput output : SkinnyOutput.values()) {
        for (int m : new int[] {1, 3, 8}) {
          // 2050 and 2051 put rows off the 16-byte grid: loads of 2 elements, then of 1; 4100
          // splits rows over two warps in fp16 and four in fp32, 8192 over four in both.
          for (int in : new int[] {64, 2048, 2050, 2051, 4100, 8192}) {
            for (int out : new int[] {1, 7, 3072}) {
              shapes.add(Arguments.of(st, output, m, in, out));
            }
          }
        }
      }
    }
    return shapes.build();
  }

  @ParameterizedTest(name = "{0} {1} m={2} in={3} out={4}")
  @MethodSource("skinnyGemmShapes")
  void skinnyGemmMatchesJava(StorageType st, SkinnyOutput output, int m, int in, int out) {
    // m = 3 launches as if on one multiprocessor: four-warp blocks, the last one partly idle.
    int sms = m == 3 ? 1 : Cuda.multiprocessors();
    long seed = ((st.ordinal() * 3L + output.ordinal()) * 16 + m) * 1_000_003L + in * 4099L + out;
    checkSkinnyGemm(st, output, m, in, out, 0, sms, new SplittableRandom(seed));
  }

  @ParameterizedTest
  @EnumSource(StorageType.class)
  void skinnyGemmReadsActivationsOffTheVectorGrid(StorageType st) {
    checkSkinnyGemm(
        st, SkinnyOutput.STORAGE, 3, 2048, 7, 1, Cuda.multiprocessors(), new SplittableRandom(10));
  }

  /**
   * y = x . w^T (+ bias) against a double-precision reference. x starts {@code xOffset} elements
   * into its buffer; y has one poisoned row more than the kernel may write, which must stay NaN.
   */
  private static void checkSkinnyGemm(
      StorageType st,
      SkinnyOutput output,
      int m,
      int in,
      int out,
      int xOffset,
      int sms,
      SplittableRandom rnd) {
    Kernels k = kernels(st, 64);
    StorageType yType = output == SkinnyOutput.FLOAT ? StorageType.F32 : st;
    boolean withBias = output == SkinnyOutput.STORAGE_WITH_BIAS;
    try (GpuTests.Stored x = store(k, st, random(rnd, xOffset + m * in, 1));
        GpuTests.Stored w = store(k, st, random(rnd, out * in, 1));
        GpuTests.Stored bias = store(k, st, random(rnd, out, 1));
        DeviceBuffer y = poisoned(yType, (long) (m + 1) * out)) {
      long xAt = x.buffer().address((long) xOffset * st.bytes);
      switch (output) {
        case STORAGE -> k.skinnyGemm(null, sms, m, in, out, y.address(), xAt, w.buffer().address());
        case STORAGE_WITH_BIAS ->
            k.skinnyGemmBias(
                null,
                sms,
                m,
                in,
                out,
                y.address(),
                xAt,
                w.buffer().address(),
                bias.buffer().address());
        case FLOAT ->
            testKernels(st)
                .skinnyGemmToFloat(null, sms, m, in, out, y.address(), xAt, w.buffer().address());
      }
      float[] expected = new float[m * out];
      double magnitude = 0; // largest sum of |terms|: fp32 accumulation error grows with it
      for (int t = 0; t < m; t++) {
        for (int r = 0; r < out; r++) {
          double sum = withBias ? bias.values()[r] : 0;
          double terms = Math.abs(sum);
          for (int i = 0; i < in; i++) {
            double p = (double) x.values()[xOffset + t * in + i] * w.values()[r * in + i];
            sum += p;
            terms += Math.abs(p);
          }
          expected[t * out + r] = (float) sum;
          magnitude = Math.max(magnitude, terms);
        }
      }
      float[] got = read(yType, y, (m + 1) * out);
      String what = "skinny gemm " + st + " " + output + " " + m + "x" + in + "x" + out;
      double tol = Math.max(tolerance(yType), 1e-6 * magnitude);
      assertClose(expected, Arrays.copyOf(got, m * out), tol, what);
      assertNothingPast(got, m, out, what);
    }
  }

  /**
   * The gated entry point against its two-kernel definition: the plain skinny GEMM over the stacked
   * [gate | up] weight, then silu_mul. Same loads in the same order, so bit-for-bit equal; and the
   * products against a double-precision reference.
   */
  @ParameterizedTest(name = "{0} m={1} in={2} ff={3} overlapped={4}")
  @CsvSource({
    "F32, 1, 2048, 8192, false",
    "F16, 1, 2048, 8192, false",
    "F16, 8, 2048, 513, false",
    "F32, 3, 2051, 7, false",
    "F16, 5, 64, 130, false",
    "F16, 1, 2048, 8192, true",
    "F32, 8, 2050, 300, true"
  })
  void skinnyGemmSiluEqualsGemmThenSiluMul(
      StorageType st, int m, int in, int ff, boolean overlapped) {
    Kernels k =
        overlapped
            ? new Kernels(module, st, 64, Cuda.programmaticLaunchSupported())
            : kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(31L * m + in + 7L * ff + st.ordinal());
    int sms = Cuda.multiprocessors();
    try (GpuTests.Stored x = store(k, st, random(rnd, m * in, 1));
        GpuTests.Stored w = store(k, st, random(rnd, 2 * ff * in, 0.05));
        DeviceBuffer gateUp = poisoned(st, (long) m * 2 * ff);
        DeviceBuffer twoKernels = poisoned(st, (long) m * ff);
        DeviceBuffer fused = poisoned(st, (long) (m + 1) * ff)) {
      long xa = x.buffer().address();
      long wa = w.buffer().address();
      k.skinnyGemm(null, sms, m, in, 2 * ff, gateUp.address(), xa, wa);
      k.siluMul(null, twoKernels.address(), gateUp.address(), m, ff);
      k.skinnyGemmSilu(null, sms, m, in, ff, fused.address(), xa, wa);
      float[] reference = read(st, twoKernels, m * ff);
      float[] got = read(st, fused, (m + 1) * ff);
      String what = "skinny gemm silu " + st + " " + m + "x" + in + "x" + ff;
      float[] expected = siluGate(x.values(), w.values(), m, in, ff);
      assertClose(expected, Arrays.copyOf(got, m * ff), tolerance(st), what);
      for (int i = 0; i < m * ff; i++) {
        assertSame(reference[i], got[i], what + ": element " + i + " differs from gemm + silu_mul");
      }
      assertNothingPast(got, m, ff, what);
    }
  }

  /**
   * The product that adds into the fp32 residual stream, against the plain product followed by
   * residual_add: the same sums rounded the same way, so equal bits.
   */
  @ParameterizedTest(name = "{0} m={1} in={2} out={3}")
  @CsvSource({
    "F16, 1, 2048, 2048",
    "F16, 1, 8192, 2048",
    "F32, 3, 520, 264",
    "F16, 8, 8192, 100",
    "F32, 1, 2050, 300",
  })
  void skinnyGemmResidualEqualsGemmThenResidualAdd(StorageType st, int m, int in, int out) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(17L * m + in + 3L * out + st.ordinal());
    int sms = Cuda.multiprocessors();
    float[] resid = random(rnd, (m + 1) * out, 2);
    try (GpuTests.Stored x = store(k, st, random(rnd, m * in, 1));
        GpuTests.Stored w = store(k, st, random(rnd, out * in, 0.05));
        DeviceBuffer y = poisoned(st, (long) m * out);
        DeviceBuffer x1 = floats(resid);
        DeviceBuffer x2 = floats(resid)) {
      long xa = x.buffer().address();
      long wa = w.buffer().address();
      k.skinnyGemm(null, sms, m, in, out, y.address(), xa, wa);
      k.residualAdd(null, x1.address(), y.address(), (long) m * out);
      k.skinnyGemmResidual(null, sms, m, in, out, x2.address(), xa, wa);
      String what = "skinny gemm residual " + st + " " + m + "x" + in + "x" + out;
      float[] expected = read(StorageType.F32, x1, (m + 1) * out);
      float[] got = read(StorageType.F32, x2, (m + 1) * out);
      for (int i = 0; i < got.length; i++) {
        assertSame(expected[i], got[i], what + ": residual " + i);
      }
      for (int i = m * out; i < got.length; i++) {
        assertSame(resid[i], got[i], what + ": row " + m + " untouched");
      }
      assertTrue(got[0] != resid[0], what + ": the product was added");
    }
  }

  /**
   * The LM head with the greedy argmax fused: the logits of the fp32-output product bit for bit,
   * and per row a key that names the first largest of them (three planted rows tie for activation
   * row 0; the one-row build computes them bit for bit alike). The fp16 cases of 3 and 5 rows take
   * the tensor-core build.
   */
  @ParameterizedTest(name = "{0} m={1} in={2} vocab={3}")
  @CsvSource({
    "F16, 1, 2048, 32000",
    "F32, 1, 264, 1000",
    "F16, 3, 520, 5000",
    "F16, 5, 2048, 32003",
    "F32, 8, 64, 77"
  })
  void skinnyGemmLogitsKeepsTheFirstLargest(StorageType st, int m, int in, int vocab) {
    Kernels k = kernels(st, 64);
    SplittableRandom rnd = new SplittableRandom(29L * m + in + vocab + st.ordinal());
    int sms = Cuda.multiprocessors();
    float[] xs = random(rnd, m * in, 1);
    float[] ws = random(rnd, vocab * in, 0.05);
    // Rows 5 and 9 (one tile of the tensor-core build, different lanes) and vocab / 2 (another
    // block) score activation row 0 alike and above the rest: a tie the key must break to 5.
    for (int i = 0; i < in; i++) {
      ws[5 * in + i] = 0.2f * xs[i];
      ws[9 * in + i] = 0.2f * xs[i];
      ws[vocab / 2 * in + i] = 0.2f * xs[i];
    }
    try (GpuTests.Stored x = store(k, st, xs);
        GpuTests.Stored w = store(k, st, ws);
        DeviceBuffer plain = poisoned(StorageType.F32, (long) m * vocab);
        DeviceBuffer fused = poisoned(StorageType.F32, (long) m * vocab);
        DeviceBuffer keys = ints(new int[2 * m])) {
      long xa = x.buffer().address();
      long wa = w.buffer().address();
      testKernels(st).skinnyGemmToFloat(null, sms, m, in, vocab, plain.address(), xa, wa);
      k.skinnyGemmLogits(null, sms, m, in, vocab, fused.address(), xa, wa, keys.address());
      String what = "skinny gemm logits " + st + " " + m + "x" + in + "x" + vocab;
      float[] expected = read(StorageType.F32, plain, m * vocab);
      float[] got = read(StorageType.F32, fused, m * vocab);
      int[] words = keys.downloadInts(2 * m);
      for (int t = 0; t < m; t++) {
        int best = 0;
        for (int j = 0; j < vocab; j++) {
          int i = t * vocab + j;
          assertSame(expected[i], got[i], what + ": logit " + i);
          if (got[i] > got[t * vocab + best]) {
            best = j;
          }
        }
        long key = (long) words[2 * t + 1] << 32 | (words[2 * t] & 0xffffffffL);
        assertEquals(best, StepLayout.greedyToken(key), what + ": greedy token of row " + t);
      }
      if (m == 1) {
        assertEquals(got[5], got[vocab / 2], what + ": the planted tie");
        assertEquals(5, StepLayout.greedyToken((long) words[1] << 32 | (words[0] & 0xffffffffL)));
      }
    }
    assertThrows(
        BackendException.class,
        () -> k.skinnyGemmLogits(null, sms, 1, 64, 8, 0, 0, 0, 4),
        "greedy keys off the 8-byte grid");
  }

  /**
   * silu(x . gate^T) * (x . up^T) in double, for m rows of x and the stacked [gate | up] weight (2
   * ff rows of {@code in}).
   */
  private static float[] siluGate(float[] x, float[] w, int m, int in, int ff) {
    float[] out = new float[m * ff];
    for (int t = 0; t < m; t++) {
      for (int j = 0; j < ff; j++) {
        double gate = 0;
        double up = 0;
        for (int i = 0; i < in; i++) {
          double xv = x[t * in + i];
          gate += xv * w[j * in + i];
          up += xv * w[(ff + j) * in + i];
        }
        out[t * ff + j] = (float) (gate / (1 + Math.exp(-gate)) * up);
      }
    }
    return out;
  }

  /** x scaled by 1 / sqrt(mean(x^2) + eps) per row of {@code in}, in double. */
  private static float[] normRows(float[] x, int m, int in, float eps) {
    return normRows(x, x, m, in, eps);
  }

  /**
   * {@code multiplied} (x as a product reads it) scaled by each row's 1 / sqrt(mean(x^2) + eps), in
   * double.
   */
  private static float[] normRows(float[] x, float[] multiplied, int m, int in, float eps) {
    float[] out = new float[m * in];
    for (int t = 0; t < m; t++) {
      double ss = 0;
      for (int i = 0; i < in; i++) {
        ss += (double) x[t * in + i] * x[t * in + i];
      }
      double scale = 1 / Math.sqrt(ss / in + eps);
      for (int i = 0; i < in; i++) {
        out[t * in + i] = (float) (multiplied[t * in + i] * scale);
      }
    }
    return out;
  }

  /**
   * The residual stream as a normed product multiplies it: the tensor-core build (fp16, 2 to 8
   * rows, 16-byte aligned rows) rounds it to fp16 after scaling it by 2^-8, while its norm sums the
   * fp32 squares; the FMA builds read it in fp32. Where a gate or up sum cancels to near zero, that
   * rounding is most of the difference from the exact sum, so the reference makes it too.
   */
  private static float[] asMultiplied(float[] resid, boolean tensorCores) {
    if (!tensorCores) {
      return resid;
    }
    float[] out = new float[resid.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = Float16.halfToFloat(Float16.floatToHalf(resid[i] / 256f)) * 256f;
    }
    return out;
  }

  /** Rows of {@code w} ([rows, in]) with column j times g[j]: a norm weight folded in. */
  private static float[] folded(float[] w, float[] g) {
    float[] out = w.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] *= g[i % g.length];
    }
    return out;
  }

  /**
   * The SiLU-gate product that norms the fp32 residual stream itself, against plain Java on the
   * normed rows and the folded weights as stored.
   */
  @ParameterizedTest(name = "{0} m={1} in={2} ff={3}")
  @CsvSource({
    "F32, 1, 2048, 8192",
    "F16, 1, 2048, 8192",
    "F16, 1, 8192, 64",
    "F16, 1, 4100, 300",
    "F32, 3, 2051, 7",
    "F16, 8, 2048, 513",
    "F16, 5, 2048, 8192",
    "F16, 3, 2052, 40",
  })
  void normedSkinnyGemmSiluMatchesJava(StorageType st, int m, int in, int ff) {
    SplittableRandom rnd = new SplittableRandom(23L * m + in + 11L * ff + st.ordinal());
    float[] resid = random(rnd, m * in, 3);
    assertNormedSiluMatchesJava(
        st, m, in, ff, resid, rnd, "normed skinny gemm silu " + st + " " + m + "x" + in + "x" + ff);
    Kernels k = kernels(st, 64);
    assertThrows(
        BackendException.class,
        () -> k.skinnyGemmSiluNormed(null, Cuda.multiprocessors(), 1, 64, 8, 0, 8, 0, 1e-5f),
        "a residual stream off the 16-byte grid");
  }

  /**
   * A residual stream with elements beyond fp16's range (65504) norms as a small one does: the
   * tensor-core build scales the stream down before rounding it to fp16.
   */
  @Test
  void normedSkinnyGemmSiluTakesAResidualStreamBeyondHalfRange() {
    SplittableRandom rnd = new SplittableRandom(97);
    int m = 5;
    int in = 2048;
    float[] resid = random(rnd, m * in, 3);
    for (int i = 0; i < resid.length; i += 7) {
      resid[i] *= 1e5f;
    }
    assertNormedSiluMatchesJava(StorageType.F16, m, in, 64, resid, rnd, "wide stream");
  }

  /**
   * The SiLU-gate product that norms the fp32 residual stream {@code resid} ([m, in]) itself, with
   * folded weights drawn from {@code rnd}, against plain Java on the normed rows and the weights as
   * stored; nothing written past row m.
   */
  private static void assertNormedSiluMatchesJava(
      StorageType st, int m, int in, int ff, float[] resid, SplittableRandom rnd, String what) {
    Kernels k = kernels(st, 64);
    float eps = 1e-5f;
    float[] g = random(rnd, in, 1.5);
    try (GpuTests.Stored w = store(k, st, folded(random(rnd, 2 * ff * in, 0.05), g));
        DeviceBuffer x = floats(resid);
        DeviceBuffer y = poisoned(st, (long) (m + 1) * ff)) {
      k.skinnyGemmSiluNormed(
          null,
          Cuda.multiprocessors(),
          m,
          in,
          ff,
          y.address(),
          x.address(),
          w.buffer().address(),
          eps);
      boolean tensorCores =
          st == StorageType.F16
              && m > 1
              && SkinnyGemm.TensorCoreGeometry.fits(in, x.address(), w.buffer().address());
      float[] multiplied = normRows(resid, asMultiplied(resid, tensorCores), m, in, eps);
      float[] expected = siluGate(multiplied, w.values(), m, in, ff);
      float[] got = read(st, y, (m + 1) * ff);
      assertClose(expected, Arrays.copyOf(got, m * ff), tolerance(st), what);
      assertNothingPast(got, m, ff, what);
    }
  }

  /**
   * The QKV product with RoPE, the K/V write and the norm fused, against the same kernel without
   * the norm on rows normed in Java: equal up to the rounding of those rows.
   */
  @ParameterizedTest(name = "{0} m={1} head_dim={2} in={3}")
  @CsvSource({
    "F32, 1, 64, 264",
    "F16, 1, 64, 2048",
    "F16, 1, 128, 8192",
    "F32, 5, 128, 264",
    "F16, 5, 64, 2048",
    "F16, 2, 128, 520"
  })
  void normedSkinnyGemmRopeKvMatchesRopeKvOnNormedRows(StorageType st, int m, int hd, int in) {
    Kernels k = kernels(st, hd);
    SplittableRandom rnd = new SplittableRandom(41L * m + hd + in + st.ordinal());
    int heads = 8;
    int kvHeads = 2;
    int half = hd / 2;
    int kvDim = kvHeads * hd;
    int out = (heads + 2 * kvHeads) * hd;
    int slots = 40;
    float eps = 1e-5f;
    int[] positions = Arrays.copyOf(new int[] {0, 3, 49, 7, 7}, m);
    int[] mapping = Arrays.copyOf(new int[] {31, 0, 5, -1, 6}, m);
    int sms = Cuda.multiprocessors();
    float[] resid = random(rnd, m * in, 3);
    try (GpuTests.Stored normed = store(k, st, normRows(resid, m, in, eps));
        DeviceBuffer x = floats(resid);
        GpuTests.Stored w = store(k, st, folded(random(rnd, out * in, 0.1), random(rnd, in, 1.5)));
        DeviceBuffer dp = ints(positions);
        DeviceBuffer dm = ints(mapping);
        DeviceBuffer dc = floats(random(rnd, 50 * half, 1));
        DeviceBuffer ds = floats(random(rnd, 50 * half, 1));
        DeviceBuffer y1 = poisoned(st, (long) m * out);
        DeviceBuffer y2 = poisoned(st, (long) m * out);
        DeviceBuffer kc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc1 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer kc2 = poisoned(st, (long) slots * kvDim);
        DeviceBuffer vc2 = poisoned(st, (long) slots * kvDim)) {
      k.skinnyGemmRopeKv(
          null,
          sms,
          m,
          in,
          out,
          y1.address(),
          normed.buffer().address(),
          w.buffer().address(),
          new SkinnyGemm.RopeKv(
              dp.address(),
              dc.address(),
              ds.address(),
              kc1.address(),
              vc1.address(),
              dm.address(),
              heads,
              kvHeads,
              hd));
      k.skinnyGemmRopeKvNormed(
          null,
          sms,
          m,
          in,
          out,
          y2.address(),
          x.address(),
          w.buffer().address(),
          new SkinnyGemm.RopeKv(
              dp.address(),
              dc.address(),
              ds.address(),
              kc2.address(),
              vc2.address(),
              dm.address(),
              heads,
              kvHeads,
              hd),
          eps);
      String what = "normed skinny gemm rope kv " + st + " m=" + m + " hd=" + hd + " in=" + in;
      double tol = st == StorageType.F32 ? 1e-5 : 4e-3;
      assertClose(read(st, y1, m * out), read(st, y2, m * out), tol, what + ": qkv");
      int count = slots * kvDim;
      float[] keys1 = read(st, kc1, count);
      float[] keys2 = read(st, kc2, count);
      float[] values1 = read(st, vc1, count);
      float[] values2 = read(st, vc2, count);
      for (int slot = 0; slot < slots; slot++) {
        boolean written = !Float.isNaN(keys1[slot * kvDim]);
        float[][] pair = {
          Arrays.copyOfRange(keys1, slot * kvDim, (slot + 1) * kvDim),
          Arrays.copyOfRange(keys2, slot * kvDim, (slot + 1) * kvDim),
          Arrays.copyOfRange(values1, slot * kvDim, (slot + 1) * kvDim),
          Arrays.copyOfRange(values2, slot * kvDim, (slot + 1) * kvDim)
        };
        if (written) {
          assertClose(pair[0], pair[1], tol, what + ": key slot " + slot);
          assertClose(pair[2], pair[3], tol, what + ": value slot " + slot);
        } else {
          assertTrue(Float.isNaN(pair[1][0]) && Float.isNaN(pair[3][0]), what + ": slot " + slot);
        }
      }
      assertFalse(Float.isNaN(keys2[31 * kvDim]), what + ": slot 31 written");
    }
  }

  @Test
  void badLaunchArgumentsAreTypedErrors() {
    Kernels k = kernels(StorageType.F32, 64);
    assertThrows(BackendException.class, () -> k.rmsnorm(null, 1, 0L, 0L, 0L, 1, 1f));
    assertThrows(BackendException.class, () -> k.rmsnorm(null, 1, 1L, 1L, 1L, 1, Float.NaN));
    assertThrows(BackendException.class, () -> k.argmax(null, 1, 1L, 1, 0L));
    assertThrows(
        BackendException.class,
        () -> k.skinnyGemm(null, 132, 9, 64, 64, 1L, 1L, 1L),
        "more rows than the kernel holds");
    assertThrows(
        BackendException.class,
        () -> k.skinnyGemmBias(null, 132, 1, 64, 64, 1L, 1L, 1L, 0L),
        "the bias kernel without a bias");
  }
}
