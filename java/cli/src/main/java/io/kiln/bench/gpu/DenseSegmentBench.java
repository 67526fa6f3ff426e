package io.kiln.bench.gpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.bench.Charts;
import io.kiln.bench.ReportFiles;
import io.kiln.cuda.Cuda;
import io.kiln.cuda.CudaGraph;
import io.kiln.engine.trt.BuildOptions;
import io.kiln.engine.trt.RuntimeOptions;
import io.kiln.engine.trt.ShapeProfile;
import io.kiln.engine.trt.TrtEngine;
import io.kiln.engine.trt.TrtEngineBuilder;
import io.kiln.execution.llm.gpu.Cublas;
import io.kiln.execution.llm.gpu.CudaModule;
import io.kiln.execution.llm.gpu.DeviceBuffer;
import io.kiln.execution.llm.gpu.Kernels;
import io.kiln.execution.llm.gpu.SkinnyGemm;
import io.kiln.execution.llm.gpu.StorageType;
import io.kiln.model.ModelSource;
import io.kiln.model.llama.LlamaConfig;
import io.kiln.model.llama.RandomLlamaModel;
import io.kiln.model.onnx.OnnxGraphBuilder;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.precision.Fp16Converter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.cuda.global.cudart;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.style.Styler;

/**
 * The dense segments of one decoder layer (QKV projection, output projection, gated MLP) on the
 * device, at the token counts a step has: as the CUDA runner runs them (cuBLAS GEMMs with Kiln's
 * SiLU-mul kernel or, up to 8 tokens, Kiln's skinny GEMM with the SiLU gate fused, also with
 * programmatic launch, and with the norms fused in as the runner's default runs them; fp16 storage,
 * fp32 accumulation) and as FP16 TensorRT engines that Kiln builds from ONNX graphs of the same
 * shapes (strongly typed, one static profile per token count). Both are timed as CUDA-graph replays
 * back to back on one stream, so the figure is device time per segment.
 *
 * <pre>
 * java ... io.kiln.bench.gpu.DenseSegmentBench [--shape llama-3.2-1b] [--tokens 1,8,64,512]
 *     [--iterations 200] [--json FILE] [--markdown FILE] [--png FILE]
 * java ... io.kiln.bench.gpu.DenseSegmentBench --from FILE.json [--markdown FILE] [--png FILE]
 * </pre>
 *
 * <p>{@code --from} renders the table and plot of an earlier run's JSON (no device needed).
 */
public final class DenseSegmentBench {
  private DenseSegmentBench() {}

  /** One segment: {@code in -> out}, or for the MLP {@code in -> 2 ff -> silu-mul -> ff -> in}. */
  record Segment(String name, int in, int out, int ff) {
    boolean qkv() {
      return name.equals("qkv");
    }

    boolean mlp() {
      return ff > 0;
    }

    /** Weight bytes read per run in fp16. */
    long weightBytes() {
      return mlp() ? 2L * (3L * in * ff) : 2L * in * out;
    }
  }

  static List<Segment> segments(LlamaConfig c) {
    int h = c.hiddenSize();
    int qDim = c.numHeads() * c.headDim();
    int kvDim = c.numKvHeads() * c.headDim();
    return List.of(
        new Segment("qkv", h, qDim + 2 * kvDim, 0),
        new Segment("o", qDim, h, 0),
        new Segment("mlp", h, h, c.intermediateSize()));
  }

  /**
   * How the runner may run a segment: its JSON key and label, whether through the skinny GEMM, with
   * programmatic launch, and with the norms fused into the products (from the fp32 residual stream,
   * the output and down projections adding into it, the QKV product with RoPE and the K/V write:
   * the runner's default up to 8 rows with fp16 storage).
   */
  enum RunnerPath {
    CUBLAS("cublas_us", "cuBLAS", false, false, false),
    SKINNY("skinny_us", "Kiln skinny GEMM", true, false, false),
    SKINNY_PROGRAMMATIC(
        "skinny_programmatic_us", "skinny GEMM, programmatic launch", true, true, false),
    FUSED_NORMS("fused_norms_us", "skinny GEMM, norms fused, programmatic", true, true, true);

    final String key;
    final String label;
    final boolean skinny;
    final boolean programmatic;
    final boolean fusedNorms;

    RunnerPath(String key, String label, boolean skinny, boolean programmatic, boolean fusedNorms) {
      this.key = key;
      this.label = label;
      this.skinny = skinny;
      this.programmatic = programmatic;
      this.fusedNorms = fusedNorms;
    }
  }

  public static void main(String[] args) throws IOException {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    if (a.containsKey("from")) {
      write((ObjectNode) ReportFiles.JSON.readTree(Path.of(a.get("from")).toFile()), a);
      return;
    }
    String shape = a.getOrDefault("shape", "llama-3.2-1b");
    LlamaConfig config = LlamaConfig.parse(RandomLlamaModel.shape(shape), shape);
    int[] tokens =
        Arrays.stream(a.getOrDefault("tokens", "1,8,64,512").split(","))
            .mapToInt(Integer::parseInt)
            .toArray();
    int iterations = Integer.parseInt(a.getOrDefault("iterations", "200"));
    Cuda.init();
    ObjectNode root = ReportFiles.JSON.createObjectNode();
    root.put("device", Cuda.deviceName()).put("shape", shape).put("iterations", iterations);
    ArrayNode rows = root.putArray("rows");
    for (Segment s : segments(config)) {
      Map<RunnerPath, double[]> us = new LinkedHashMap<>();
      for (RunnerPath path : RunnerPath.values()) {
        us.put(
            path,
            path.programmatic && !Cuda.programmaticLaunchSupported()
                ? nans(tokens.length)
                : timeRunnerPath(s, config, tokens, iterations, path));
      }
      double[] cublasUs = us.get(RunnerPath.CUBLAS);
      double[] trtUs = timeTensorRt(s, tokens, iterations);
      for (int t = 0; t < tokens.length; t++) {
        ObjectNode r = rows.addObject();
        r.put("segment", s.name()).put("tokens", tokens[t]);
        StringBuilder line =
            new StringBuilder(String.format(Locale.ROOT, "%-4s tokens %4d:", s.name(), tokens[t]));
        for (Map.Entry<RunnerPath, double[]> e : us.entrySet()) {
          putMicros(r, e.getKey().key, e.getValue()[t]);
          line.append(
              String.format(Locale.ROOT, " %s %.1f us,", e.getKey().label, e.getValue()[t]));
        }
        r.put("tensorrt_us", trtUs[t])
            .put("cublas_over_tensorrt", cublasUs[t] / trtUs[t])
            .put("weight_bytes", s.weightBytes());
        System.out.println(line.append(String.format(Locale.ROOT, " TensorRT %.1f us", trtUs[t])));
      }
    }
    write(root, a);
  }

  private static void write(ObjectNode root, Map<String, String> a) throws IOException {
    String md = markdown(root);
    System.out.print(md);
    if (a.containsKey("json")) {
      ReportFiles.JSON
          .writerWithDefaultPrettyPrinter()
          .writeValue(Path.of(a.get("json")).toFile(), root);
    }
    if (a.containsKey("markdown")) {
      Files.writeString(Path.of(a.get("markdown")), md);
    }
    if (a.containsKey("png")) {
      Charts.savePng(Path.of(a.get("png")), charts(root));
    }
  }

  /** One chart per segment: µs per run against tokens, a line per path (log-log). */
  static List<XYChart> charts(ObjectNode root) {
    Map<String, List<JsonNode>> bySegment = new LinkedHashMap<>();
    for (JsonNode r : root.path("rows")) {
      bySegment.computeIfAbsent(r.path("segment").asText(), k -> new ArrayList<>()).add(r);
    }
    List<String[]> paths = new ArrayList<>();
    for (RunnerPath path : RunnerPath.values()) {
      paths.add(new String[] {path.key, path.label});
    }
    paths.add(new String[] {"tensorrt_us", "TensorRT FP16"});
    List<XYChart> charts = new ArrayList<>();
    for (Map.Entry<String, List<JsonNode>> e : bySegment.entrySet()) {
      XYChart c =
          Charts.lines(
              460,
              440,
              e.getKey() + " (" + root.path("device").asText() + ")",
              "tokens per step",
              "µs per run");
      c.getStyler()
          .setXAxisLogarithmic(true)
          .setYAxisLogarithmic(true)
          .setLegendPosition(Styler.LegendPosition.OutsideS);
      for (String[] path : paths) {
        List<double[]> points = new ArrayList<>();
        for (JsonNode r : e.getValue()) {
          double us = micros(r, path[0]);
          if (!Double.isNaN(us)) {
            points.add(new double[] {r.path("tokens").asDouble(), us});
          }
        }
        if (!points.isEmpty()) {
          Charts.addLine(
              c,
              path[1],
              points.stream().mapToDouble(p -> p[0]).toArray(),
              points.stream().mapToDouble(p -> p[1]).toArray());
        }
      }
      charts.add(c);
    }
    return charts;
  }

  static String markdown(ObjectNode root) {
    StringBuilder md = new StringBuilder();
    md.append("Dense segments of one layer (")
        .append(root.path("shape").asText())
        .append(") on ")
        .append(root.path("device").asText())
        .append(", fp16, CUDA-graph replay, µs per run\n\n")
        .append("| segment | tokens |");
    for (RunnerPath path : RunnerPath.values()) {
      md.append(' ').append(path.label).append(" |");
    }
    md.append(" TensorRT | runner's best / TensorRT | runner's best, weight GB/s |\n|---|---:|")
        .append("---:|".repeat(RunnerPath.values().length + 3))
        .append('\n');
    for (var r : root.path("rows")) {
      md.append(
          String.format(
              Locale.ROOT, "| %s | %d |", r.path("segment").asText(), r.path("tokens").asInt()));
      double best = Double.NaN;
      for (RunnerPath path : RunnerPath.values()) {
        double us = micros(r, path.key);
        md.append(' ').append(cell(us)).append(" |");
        if (!Double.isNaN(us) && (Double.isNaN(best) || us < best)) {
          best = us;
        }
      }
      double t = r.path("tensorrt_us").asDouble();
      md.append(
          String.format(
              Locale.ROOT,
              " %.1f | %.2f | %.0f |%n",
              t,
              best / t,
              r.path("weight_bytes").asDouble() / (best * 1e3)));
    }
    md.append("\nBelow 1 in the last column: the runner's own path is faster than TensorRT.\n");
    return md.toString();
  }

  private static double[] nans(int n) {
    double[] a = new double[n];
    Arrays.fill(a, Double.NaN);
    return a;
  }

  /** NaN (a path that does not apply) is written as null: JSON has no NaN. */
  private static void putMicros(ObjectNode r, String key, double us) {
    if (Double.isNaN(us)) {
      r.putNull(key);
    } else {
      r.put(key, us);
    }
  }

  private static double micros(JsonNode r, String key) {
    JsonNode v = r.path(key);
    return v.isNumber() ? v.asDouble() : Double.NaN;
  }

  private static String cell(double us) {
    return Double.isNaN(us) ? "–" : String.format(Locale.ROOT, "%.1f", us);
  }

  /**
   * The runner's way ({@code path}): cuBLAS GemmEx, or up to 8 tokens Kiln's skinny GEMM (NaN
   * above), on fp16 storage. The MLP runs Kiln's SiLU-mul between cuBLAS GEMMs; the skinny path
   * fuses it into the gate/up product, as the runner does. With the norms fused, the QKV and
   * gate/up products read the fp32 residual stream (QKV also rotating and writing K/V), and the
   * output and down projections add into it.
   */
  static double[] timeRunnerPath(
      Segment s, LlamaConfig config, int[] tokens, int iterations, RunnerPath path) {
    int maxTokens = Arrays.stream(tokens).max().orElse(1);
    int hiddenOut = s.mlp() ? 2 * s.ff() : s.out();
    int half = config.headDim() / 2;
    CUstream_st stream = new CUstream_st();
    Cuda.check(cudart.cudaStreamCreate(stream), "cudaStreamCreate");
    try (CudaModule module = CudaModule.load();
        Cublas blas = new Cublas(stream);
        DeviceBuffer w1 = filled(2L * s.in() * hiddenOut);
        DeviceBuffer w2 = filled(s.mlp() ? 2L * s.ff() * s.in() : 1);
        DeviceBuffer x = filled(2L * maxTokens * s.in());
        DeviceBuffer y1 = filled(2L * maxTokens * hiddenOut);
        DeviceBuffer act = filled(s.mlp() ? 2L * maxTokens * s.ff() : 1);
        DeviceBuffer y2 = filled(s.mlp() ? 2L * maxTokens * s.in() : 1);
        DeviceBuffer residual = filled(4L * maxTokens * Math.max(s.in(), s.out()));
        DeviceBuffer ropeTable = filled(4L * maxTokens * half);
        DeviceBuffer cache = filled(2L * maxTokens * config.kvDim());
        DeviceBuffer rows = zeros(4L * maxTokens)) {
      Kernels kernels = new Kernels(module, StorageType.F16, config.headDim(), path.programmatic);
      int f16 = StorageType.F16.cudaType;
      int sms = Cuda.multiprocessors();
      float eps = (float) config.rmsNormEps();
      // Every row at position 0 and K/V slot 0: timing only.
      SkinnyGemm.RopeKv rope =
          new SkinnyGemm.RopeKv(
              rows.address(),
              ropeTable.address(),
              ropeTable.address(),
              cache.address(),
              cache.address(),
              rows.address(),
              config.numHeads(),
              config.numKvHeads(),
              config.headDim());
      double[] us = new double[tokens.length];
      for (int t = 0; t < tokens.length; t++) {
        int n = tokens[t];
        if (path.skinny && !SkinnyGemm.handles(n)) {
          us[t] = Double.NaN;
          continue;
        }
        GemmStep gemm =
            path.skinny
                ? (y, in, w, inDim, outDim) ->
                    kernels.skinnyGemm(stream, sms, n, inDim, outDim, y, in, w)
                : (y, in, w, inDim, outDim) -> blas.linear(y, f16, in, w, f16, n, inDim, outDim);
        long residualStream = residual.address();
        Runnable run;
        if (path.fusedNorms && s.mlp()) {
          run =
              () -> {
                kernels.skinnyGemmSiluNormed(
                    stream,
                    sms,
                    n,
                    s.in(),
                    s.ff(),
                    act.address(),
                    residualStream,
                    w1.address(),
                    eps);
                kernels.skinnyGemmResidual(
                    stream, sms, n, s.ff(), s.in(), residualStream, act.address(), w2.address());
              };
        } else if (path.fusedNorms && s.qkv()) {
          run =
              () ->
                  kernels.skinnyGemmRopeKvNormed(
                      stream,
                      sms,
                      n,
                      s.in(),
                      s.out(),
                      y1.address(),
                      residualStream,
                      w1.address(),
                      rope,
                      eps);
        } else if (path.fusedNorms) {
          run =
              () ->
                  kernels.skinnyGemmResidual(
                      stream, sms, n, s.in(), s.out(), residualStream, x.address(), w1.address());
        } else {
          run =
              () -> {
                if (s.mlp() && path.skinny) {
                  kernels.skinnyGemmSilu(
                      stream, sms, n, s.in(), s.ff(), act.address(), x.address(), w1.address());
                } else {
                  gemm.run(y1.address(), x.address(), w1.address(), s.in(), hiddenOut);
                  if (s.mlp()) {
                    kernels.siluMul(stream, act.address(), y1.address(), n, s.ff());
                  }
                }
                if (s.mlp()) {
                  gemm.run(y2.address(), act.address(), w2.address(), s.ff(), s.in());
                }
              };
        }
        run.run(); // cuBLAS loads its kernels outside the capture
        us[t] = replayMicros(stream, run, iterations);
      }
      return us;
    } finally {
      cudart.cudaStreamDestroy(stream);
    }
  }

  /** One GEMM of n rows: y[n][out] = x[n][in] times w[out][in]^T. */
  private interface GemmStep {
    void run(long y, long x, long w, int in, int out);
  }

  /**
   * Device memory with a harmless pattern rather than garbage: 0x3C bytes, about 1.06 as fp16 and
   * 0.0115 as fp32.
   */
  private static DeviceBuffer filled(long bytes) {
    return memset(bytes, 0x3C);
  }

  private static DeviceBuffer zeros(long bytes) {
    return memset(bytes, 0);
  }

  private static DeviceBuffer memset(long bytes, int value) {
    DeviceBuffer b = new DeviceBuffer(bytes);
    Cuda.check(cudart.cudaMemset(Cuda.at(b.address()), value, bytes), "cudaMemset");
    return b;
  }

  /** Captures {@code run} once and returns microseconds per graph replay (10 warm-up runs). */
  private static double replayMicros(CUstream_st stream, Runnable run, int iterations) {
    try (CudaGraph graph = CudaGraph.capture(stream, run)) {
      return graph.millisPerReplay(10, iterations) * 1000.0;
    }
  }

  /** A strongly typed FP16 engine of the segment, one static profile per token count. */
  static double[] timeTensorRt(Segment s, int[] tokens, int iterations) throws IOException {
    Path dir = Files.createTempDirectory("kiln-segment");
    try {
      Path fp32 = dir.resolve(s.name() + ".onnx");
      segmentGraph(s, new Random(1)).write(fp32, "kiln");
      // float16 everywhere, inputs and outputs too, like the runner's fp16 storage.
      OnnxModel fp16 =
          new Fp16Converter(new Fp16Converter.Options(Set.of(), Set.of(), false, false))
              .convert(OnnxModel.load(fp32))
              .model();
      List<ShapeProfile> profiles = new ArrayList<>();
      for (int n : tokens) {
        profiles.add(ShapeProfile.fixed(n, 1));
      }
      BuildOptions options =
          BuildOptions.builder()
              .precision(Precision.FP16)
              .stronglyTyped(true)
              .profiles(profiles)
              .build();
      byte[] plan =
          new TrtEngineBuilder(System.err::println)
              .build(ModelSource.of(s.name() + "-fp16", fp16.toBytes()), options)
              .plan();
      double[] us = new double[tokens.length];
      try (TrtEngine engine = TrtEngine.load(plan, RuntimeOptions.defaults())) {
        for (int t = 0; t < tokens.length; t++) {
          try (Tensor x =
              Tensor.ofFloats(io.kiln.DType.F16, ones(tokens[t] * s.in()), tokens[t], s.in())) {
            us[t] = engine.timeDeviceOnly(Map.of("x", x), true, iterations);
          }
        }
      }
      return us;
    } finally {
      try (var files = Files.list(dir)) {
        for (Path p : files.toList()) {
          Files.deleteIfExists(p);
        }
      }
      Files.deleteIfExists(dir);
    }
  }

  private static float[] ones(int n) {
    float[] v = new float[n];
    Arrays.fill(v, 1f);
    return v;
  }

  /**
   * The segment as an ONNX graph in float32 with random weights: {@code y = x W} or, for the MLP,
   * {@code y = (silu(x Wg) * (x Wu)) Wd} with gate and up in one weight, as the runner stores them.
   */
  static OnnxGraphBuilder segmentGraph(Segment s, Random rnd) {
    OnnxGraphBuilder g = new OnnxGraphBuilder(s.name(), 17, null);
    g.input("x", OnnxGraphBuilder.FLOAT, "batch", s.in());
    float scale = (float) (1 / Math.sqrt(s.in()));
    if (!s.mlp()) {
      String w = g.floats("w", random(rnd, s.in() * s.out(), scale), s.in(), s.out());
      g.node("MatMul", new String[] {"x", w}, new String[] {"y"});
    } else {
      String wgu =
          g.floats("w_gate_up", random(rnd, s.in() * 2 * s.ff(), scale), s.in(), 2L * s.ff());
      String wd =
          g.floats(
              "w_down",
              random(rnd, s.ff() * s.in(), (float) (1 / Math.sqrt(s.ff()))),
              s.ff(),
              s.in());
      String gateUp = g.op("MatMul", "x", wgu);
      String axis = g.intVector(1);
      String gate = g.op("Slice", new String[] {gateUp, g.intVector(0), g.intVector(s.ff()), axis});
      String up =
          g.op("Slice", new String[] {gateUp, g.intVector(s.ff()), g.intVector(2L * s.ff()), axis});
      String silu = g.op("Mul", gate, g.op("Sigmoid", gate));
      String act = g.op("Mul", silu, up);
      g.node("MatMul", new String[] {act, wd}, new String[] {"y"});
    }
    g.output("y", OnnxGraphBuilder.FLOAT, "batch", s.out());
    return g;
  }

  private static float[] random(Random rnd, int n, float scale) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) rnd.nextGaussian() * scale;
    }
    return v;
  }
}
