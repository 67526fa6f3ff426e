package io.kiln.execution.llm.gpu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kiln.cuda.Cuda;
import io.kiln.cuda.GpuProbe;
import io.kiln.execution.llm.GenerationHandle;
import io.kiln.execution.llm.GenerationResult;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.SamplingParams;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.bytedeco.cuda.global.cudart;

/** Shared set-up of the GPU tests: skip without a device or kernels, device data helpers. */
final class GpuTests {
  /** The kernels only tests launch (native/test_kernels.cu), on the test classpath only. */
  static final String TEST_KERNELS = "/io/kiln/native/test_kernels.fatbin";

  private static CudaModule testModule;
  private static final Map<StorageType, TestKernels> testKernels = new EnumMap<>(StorageType.class);

  private GpuTests() {}

  /** The kernels only tests launch, loaded on first use (see {@link #unloadTestKernels}). */
  static synchronized TestKernels testKernels(StorageType st) {
    if (testModule == null) {
      testModule = CudaModule.load(TEST_KERNELS);
    }
    return testKernels.computeIfAbsent(st, s -> new TestKernels(testModule, s));
  }

  static synchronized void unloadTestKernels() {
    testKernels.clear();
    if (testModule != null) {
      testModule.close();
      testModule = null;
    }
  }

  static void assumeGpu() {
    Optional<String> reason = GpuProbe.cudaUnavailableReason();
    assumeTrue(reason.isEmpty(), () -> "skipped: " + reason.orElse(""));
    assumeTrue(CudaModule.kernelsBuilt(), "skipped: the CUDA kernels were not built (no nvcc)");
    assumeTrue(
        CudaModule.kernelsBuilt(TEST_KERNELS),
        "skipped: the test kernels were not built (no nvcc)");
  }

  static void sync() {
    Cuda.check(cudart.cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

  static float[] random(SplittableRandom rnd, int n, double scale) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
    }
    return out;
  }

  /** Device data in a storage type, plus the values as the device holds them (fp16-rounded). */
  record Stored(DeviceBuffer buffer, float[] values) implements AutoCloseable {
    @Override
    public void close() {
      buffer.close();
    }
  }

  static Stored store(Kernels k, StorageType st, float[] data) {
    DeviceBuffer out = new DeviceBuffer((long) data.length * st.bytes);
    if (st == StorageType.F32) {
      out.upload(data);
      return new Stored(out, data.clone());
    }
    try (DeviceBuffer stage = new DeviceBuffer(4L * data.length)) {
      stage.upload(data);
      k.castToHalf(null, out.address(), stage.address(), (long) data.length);
      sync();
    }
    return new Stored(out, read(st, out, data.length));
  }

  /** A poisoned output: every byte 0xFF, a NaN in both fp16 and fp32. */
  static DeviceBuffer poisoned(StorageType st, long count) {
    DeviceBuffer b = new DeviceBuffer(count * st.bytes);
    b.fill(0xFF);
    return b;
  }

  static float[] read(StorageType st, DeviceBuffer b, int count) {
    sync();
    if (st == StorageType.F32) {
      return b.downloadFloats(count);
    }
    try (DeviceBuffer wide = new DeviceBuffer(4L * count)) {
      testKernels(StorageType.F16).castToFloat(null, wide.address(), b.address(), (long) count);
      sync();
      return wide.downloadFloats(count);
    }
  }

  static DeviceBuffer ints(int[] data) {
    DeviceBuffer b = new DeviceBuffer(4L * Math.max(1, data.length));
    b.upload(data);
    return b;
  }

  static DeviceBuffer floats(float[] data) {
    DeviceBuffer b = new DeviceBuffer(4L * Math.max(1, data.length));
    b.upload(data);
    return b;
  }

  /** Submits every prompt for {@code newTokens} greedy tokens, then waits for each result. */
  static List<GenerationResult> greedyAll(LlmEngine engine, List<int[]> prompts, int newTokens)
      throws Exception {
    List<GenerationHandle> handles = new ArrayList<>();
    for (int[] prompt : prompts) {
      handles.add(engine.submit(prompt, SamplingParams.greedy(newTokens), event -> {}));
    }
    List<GenerationResult> out = new ArrayList<>();
    for (GenerationHandle handle : handles) {
      out.add(handle.result().get(240, TimeUnit.SECONDS));
    }
    return out;
  }
}
