package io.kiln.bench.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.bench.ReportFiles;
import io.kiln.cli.BuildCommand;
import io.kiln.cuda.Cuda;
import io.kiln.engine.trt.RuntimeOptions;
import io.kiln.engine.trt.TrtEngine;
import io.kiln.engine.trt.TrtLibrary;
import io.kiln.model.TensorJson;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import picocli.CommandLine;

/**
 * The device benchmark of the TensorRT path on a BERT-base-shaped encoder: builds each variant with
 * {@code kiln build} (one static profile per batch bucket), then times every batch with and without
 * CUDA graphs. Rows accumulate in {@code WORK/results.json} so that variants can run in separate
 * device calls; {@code --report DIR} merges them with the Python peers' rows into Markdown, JSON
 * and PNG.
 *
 * <pre>
 * java ... io.kiln.bench.driver.TrtBenchmark --work /tmp/kb --quantize percentile [--placements w,w0,r0,wr0]
 * java ... io.kiln.bench.driver.TrtBenchmark --work /tmp/kb --variants fp16,fp32 [--batches 1,8,32,64]
 * java ... io.kiln.bench.driver.TrtBenchmark --work /tmp/kb --report OUT --command "..."
 * </pre>
 */
public final class TrtBenchmark {
  private static final ObjectMapper JSON = ReportFiles.JSON;

  private TrtBenchmark() {}

  /** Skip the build when a verified plan of the variant is already in WORK. */
  private static boolean REUSE;

  /** Build with detailed layers and print which kernels TensorRT chose. */
  private static boolean LAYERS;

  /** A model file and how to build it. */
  record Variant(
      String name, String modelFile, String precision, boolean stronglyTyped, boolean calibrate) {}

  /**
   * Q/DQ placements: their file suffix and {@code kiln quantize} flags. w = weighted MatMuls only,
   * r = also the residual Adds, s = one shared Q/DQ pair and smoothing scale per tensor, a trailing
   * 0 = no smoothing (its per-channel Mul is one more elementwise pass unless TensorRT fuses it),
   * g, c and q = some inputs left unsmoothed, f = the FFN-out MatMuls left in float (below).
   */
  static final Map<String, List<String>> PLACEMENTS = new LinkedHashMap<>();

  static {
    PLACEMENTS.put("full", List.of());
    PLACEMENTS.put("w", List.of("--weighted-only"));
    PLACEMENTS.put("w0", List.of("--weighted-only", "--smoothing", "0"));
    PLACEMENTS.put("r0", List.of("--residual-add", "--smoothing", "0"));
    PLACEMENTS.put("wr0", List.of("--weighted-only", "--residual-add", "--smoothing", "0"));
    PLACEMENTS.put("ws", List.of("--weighted-only", "--shared-qdq"));
    PLACEMENTS.put("ws0", List.of("--weighted-only", "--shared-qdq", "--smoothing", "0"));
    PLACEMENTS.put("wrs", List.of("--weighted-only", "--residual-add", "--shared-qdq"));
    PLACEMENTS.put(
        "wrs0", List.of("--weighted-only", "--residual-add", "--shared-qdq", "--smoothing", "0"));
    PLACEMENTS.put("rs0", List.of("--residual-add", "--shared-qdq", "--smoothing", "0"));
    // ws with the FFN-out input unsmoothed (g: GELU then quantize, fusable into the FFN-in GEMM),
    // and also the attention-output input (c: the attention context).
    String ffnOut = "**/layer.*/output/dense/MatMul";
    String attentionOut = "**/attention/output/dense/MatMul";
    PLACEMENTS.put("wsg", List.of("--weighted-only", "--shared-qdq", "--unsmoothed", ffnOut));
    PLACEMENTS.put(
        "wsgc",
        List.of("--weighted-only", "--shared-qdq", "--unsmoothed", ffnOut + "," + attentionOut));
    // ws with the QKV input unsmoothed (q: the LayerNorm quantizes directly), and ws with the FFN
    // out in float (f: GELU stays in the FFN-in GEMM's epilogue, as in FP16).
    PLACEMENTS.put(
        "wsq",
        List.of("--weighted-only", "--shared-qdq", "--unsmoothed", "**/attention/self/*/MatMul"));
    PLACEMENTS.put(
        "wsgq",
        List.of(
            "--weighted-only",
            "--shared-qdq",
            "--unsmoothed",
            ffnOut + ",**/attention/self/*/MatMul"));
    String ffnOutNodes =
        String.join(
            ",",
            java.util.stream.IntStream.range(0, 12)
                .mapToObj(i -> "/m/encoder/layer." + i + "/output/dense/MatMul")
                .toList());
    PLACEMENTS.put("wsf", List.of("--weighted-only", "--shared-qdq", "--exclude", ffnOutNodes));
  }

  static final Map<String, Variant> VARIANTS = new LinkedHashMap<>();

  static {
    List<Variant> all =
        new ArrayList<>(
            List.of(
                new Variant("trt-fp32", "bert_base_fp32.onnx", "fp32", false, false),
                new Variant("trt-fp16", "bert_base_fp32.onnx", "fp16", false, false),
                new Variant("trt-fp16-typed", "bert_base_fp16_kiln.onnx", "fp16", true, false),
                new Variant("trt-int8-qdq", "bert_base_qdq.onnx", "int8", false, false),
                new Variant("trt-int8-qdq-typed", "bert_base_qdq_fp16.onnx", "int8", true, false),
                new Variant("trt-int8-calib", "bert_base_fp32.onnx", "int8", false, true)));
    for (String p : PLACEMENTS.keySet()) {
      if (!p.equals("full")) {
        all.add(
            new Variant(
                "trt-int8-qdq-" + p + "-typed",
                "bert_base_qdq_" + p + "_fp16.onnx",
                "int8",
                true,
                false));
      }
    }
    all.forEach(v -> VARIANTS.put(v.name(), v));
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    }
    Path work = Path.of(a.getOrDefault("work", "/tmp/kb"));
    REUSE = Boolean.parseBoolean(a.getOrDefault("reuse", "false"));
    LAYERS = Boolean.parseBoolean(a.getOrDefault("layers", "false"));
    if (a.containsKey("report")) {
      TrtBenchReport.write(
          work,
          Path.of(a.get("report")),
          a.getOrDefault("command", ""),
          a.getOrDefault("measured-at", ""));
      return;
    }
    if (a.containsKey("quantize")) {
      quantize(
          work,
          Integer.parseInt(a.getOrDefault("seq", "128")),
          a.get("quantize"),
          List.of(a.getOrDefault("placements", "w,w0,r0,wr0").split(",")));
      return;
    }
    int[] batches =
        Arrays.stream(a.getOrDefault("batches", "1,8,32,64").split(","))
            .mapToInt(Integer::parseInt)
            .toArray();
    int seq = Integer.parseInt(a.getOrDefault("seq", "128"));
    double seconds = Double.parseDouble(a.getOrDefault("seconds", "1.5"));
    int optLevel = Integer.parseInt(a.getOrDefault("opt-level", "3"));
    for (String name : a.getOrDefault("variants", "trt-fp16").split(",")) {
      Variant v = VARIANTS.get(name.trim());
      if (v == null) {
        throw new IllegalArgumentException(
            "unknown variant " + name + "; known: " + VARIANTS.keySet());
      }
      if (!Files.exists(work.resolve(v.modelFile()))) {
        System.out.println("SKIP " + v.name() + ": " + v.modelFile() + " not found");
        continue;
      }
      try {
        runVariant(work, v, batches, seq, seconds, optLevel);
      } catch (RuntimeException e) {
        System.out.println("FAILED " + v.name() + ": " + e);
        e.printStackTrace(System.out);
        appendRow(
            work,
            "failures",
            JSON.createObjectNode().put("variant", v.name()).put("error", e.toString()));
      }
    }
  }

  private static void runVariant(
      Path work, Variant v, int[] batches, int seq, double seconds, int optLevel)
      throws IOException {
    Path plan = work.resolve(v.name() + ".plan");
    String batchList =
        String.join(",", Arrays.stream(batches).mapToObj(Integer::toString).toList());
    List<String> build =
        new ArrayList<>(
            List.of(
                work.resolve(v.modelFile()).toString(),
                "--precision",
                v.precision(),
                "--batch",
                batchList,
                "--seq",
                Integer.toString(seq),
                "--opt-level",
                Integer.toString(optLevel),
                "-o",
                plan.toString()));
    if (v.stronglyTyped()) {
      build.add("--strongly-typed");
    }
    if (LAYERS) {
      build.add("--detailed-layers");
    }
    if (v.calibrate()) {
      Path calib = work.resolve("calibration");
      if (!Files.isDirectory(calib)) {
        writeCalibration(calib, work.resolve(v.modelFile()), seq);
      }
      build.addAll(
          List.of(
              "--calibration",
              calib.toString(),
              "--calibration-cache",
              work.resolve(v.name() + ".calib").toString()));
    }
    ObjectNode buildRow = JSON.createObjectNode().put("variant", v.name());
    if (REUSE
        && Files.exists(plan)
        && Files.exists(io.kiln.engine.trt.EngineMetadata.sidecarOf(plan))) {
      System.out.println("reusing " + plan);
    } else if (v.name().equals("trt-fp16")) {
      // The timing-cache measurement: a cold build into a fresh cache, then the same build again.
      Path tc = work.resolve("timing-fp16.cache");
      Files.deleteIfExists(tc);
      build.addAll(List.of("--timing-cache", tc.toString()));
      double cold = kilnBuild(build);
      double warm = kilnBuild(build);
      buildRow.put("first_build_s", cold).put("cached_build_s", warm).put("speedup", cold / warm);
      Files.copy(
          tc, work.resolve("timing.cache"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      buildRow.put("command", "kiln build " + String.join(" ", build));
    } else {
      build.addAll(List.of("--timing-cache", work.resolve("timing.cache").toString()));
      buildRow.put("first_build_s", kilnBuild(build));
      buildRow.put("command", "kiln build " + String.join(" ", build));
    }
    if (buildRow.has("first_build_s")) {
      appendRow(work, "builds", buildRow);
    }

    try (NvmlMonitor nvml = new NvmlMonitor();
        TrtEngine engine = TrtEngine.load(plan, RuntimeOptions.defaults())) {
      System.out.println(
          v.name() + ": profiles " + engine.profiles() + ", buckets " + engine.buckets());
      if (LAYERS) {
        printKernels(v.name(), JSON.readTree(engine.layerInformation()));
      }
      double err = accuracy(work, engine, seq);
      System.out.printf(
          "%s: rel err vs PyTorch FP32 (batch 8, valid tokens) %.3g%n", v.name(), err);
      appendRow(
          work,
          "accuracy",
          JSON.createObjectNode().put("variant", v.name()).put("rel_err_vs_torch_fp32_b8", err));
      for (int b : batches) {
        Map<String, Tensor> in = inputs(engine, b, seq, new Random(b * 31L + seq));
        for (boolean graphs : new boolean[] {false, true}) {
          ObjectNode row;
          try {
            row = measure(engine, nvml, in, b, seq, graphs, seconds);
          } catch (RuntimeException e) {
            System.out.println("FAILED " + v.name() + " b=" + b + " graphs=" + graphs + ": " + e);
            appendRow(
                work,
                "failures",
                JSON.createObjectNode()
                    .put("variant", v.name() + " b=" + b)
                    .put("error", e.toString()));
            continue;
          }
          row.put("variant", v.name());
          appendRow(work, "rows", row);
          System.out.printf(
              "%-20s b=%-3d graphs=%-5s p50 %8.1f us  p99 %8.1f us  %9.0f items/s  device-only %8.1f us  util %5.1f%%  mem %d MiB%n",
              v.name(),
              b,
              graphs,
              row.get("p50_us").asDouble(),
              row.get("p99_us").asDouble(),
              row.get("items_per_s").asDouble(),
              row.get("device_only_us").asDouble(),
              row.get("gpu_util").asDouble(),
              row.get("mem_mib").asLong());
        }
        in.values().forEach(Tensor::close);
      }
      System.out.println(v.name() + " graph stats: " + engine.graphStats());
    }
    if (v.name().startsWith("trt-fp16")) {
      serving(work, v, plan, seq, seconds);
    }
  }

  /**
   * Kiln as a service: {@code CALLERS} threads call one engine that has {@code STREAMS} execution
   * slots, so one request's copies overlap another's compute. A different mode from the
   * single-caller rows above, reported apart.
   */
  private static void serving(Path work, Variant v, Path plan, int seq, double seconds)
      throws IOException {
    final int streams = 2;
    final int callers = 4;
    try (TrtEngine engine = TrtEngine.load(plan, RuntimeOptions.defaults().withStreams(streams))) {
      for (int b : new int[] {8, 32}) {
        Map<String, Tensor> in = inputs(engine, b, seq, new Random(b * 17L));
        try {
          for (int i = 0; i < 20; i++) {
            engine.run(in, true).values().forEach(Tensor::close);
          }
          java.util.concurrent.atomic.AtomicLong runs =
              new java.util.concurrent.atomic.AtomicLong();
          List<Long> lat = java.util.Collections.synchronizedList(new ArrayList<>());
          long end = System.nanoTime() + (long) (seconds * 1e9);
          List<Thread> threads = new ArrayList<>();
          long start = System.nanoTime();
          for (int c = 0; c < callers; c++) {
            Thread t =
                new Thread(
                    () -> {
                      while (System.nanoTime() < end) {
                        long t0 = System.nanoTime();
                        engine.run(in, true).values().forEach(Tensor::close);
                        lat.add(System.nanoTime() - t0);
                        runs.incrementAndGet();
                      }
                    });
            threads.add(t);
            t.start();
          }
          for (Thread t : threads) {
            t.join();
          }
          double elapsed = (System.nanoTime() - start) / 1e9;
          long[] sorted = lat.stream().mapToLong(Long::longValue).sorted().toArray();
          ObjectNode row =
              JSON.createObjectNode()
                  .put("variant", v.name())
                  .put("batch", b)
                  .put("seq", seq)
                  .put("streams", streams)
                  .put("callers", callers)
                  .put("items_per_s", b * runs.get() / elapsed)
                  .put("p50_us", sorted[sorted.length / 2] / 1e3)
                  .put("p99_us", percentileMicros(sorted, 0.99));
          appendRow(work, "serving", row);
          System.out.printf(
              "%-20s b=%-3d serving %d callers / %d streams: %9.0f items/s  p50 %8.1f us%n",
              v.name(),
              b,
              callers,
              streams,
              row.get("items_per_s").asDouble(),
              row.get("p50_us").asDouble());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        } finally {
          in.values().forEach(Tensor::close);
        }
      }
    }
  }

  /**
   * The kernels TensorRT chose and how many layers run each, most frequent first (from detailed
   * layer information; a names-only plan has none).
   */
  static void printKernels(String variant, JsonNode info) {
    Map<String, Integer> kernels = new LinkedHashMap<>();
    int layers = 0;
    for (JsonNode layer : info.path("Layers")) {
      layers++;
      String tactic = layer.path("TacticName").asText("");
      if (!tactic.isEmpty()) {
        kernels.merge(tactic, 1, Integer::sum);
      }
    }
    System.out.println(
        variant + ": " + layers + " layers, " + kernels.size() + " distinct kernels");
    kernels.entrySet().stream()
        .sorted((x, y) -> y.getValue() - x.getValue())
        .forEach(e -> System.out.printf("%s:   %3d x %s%n", variant, e.getValue(), e.getKey()));
  }

  /**
   * Relative error against the PyTorch FP32 output of the fixed batch-8 input, on unmasked tokens.
   */
  static double accuracy(Path work, TrtEngine engine, int seq) throws IOException {
    Path ids = work.resolve("ref_b8_input_ids.bin");
    if (!Files.exists(ids)) {
      return -1;
    }
    long[] idv = readLongs(ids);
    long[] mask = readLongs(work.resolve("ref_b8_attention_mask.bin"));
    java.nio.FloatBuffer fb =
        java.nio.ByteBuffer.wrap(Files.readAllBytes(work.resolve("ref_b8_fp32.bin")))
            .order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .asFloatBuffer();
    float[] ref = new float[fb.remaining()];
    fb.get(ref);
    int batch = idv.length / seq;
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("input_ids", Tensor.of(idv, batch, seq));
    in.put("attention_mask", Tensor.of(mask, batch, seq));
    Map<String, Tensor> out = engine.run(in, true);
    float[] got = out.values().iterator().next().toFloatArray();
    out.values().forEach(Tensor::close);
    int hidden = ref.length / (batch * seq);
    double num = 0;
    double den = 0;
    for (int tok = 0; tok < batch * seq; tok++) {
      if (mask[tok] == 0) {
        continue;
      }
      for (int h = 0; h < hidden; h++) {
        double d = got[tok * hidden + h] - ref[tok * hidden + h];
        num += d * d;
        den += (double) ref[tok * hidden + h] * ref[tok * hidden + h];
      }
    }
    return Math.sqrt(num / den);
  }

  private static long[] readLongs(Path p) throws IOException {
    java.nio.LongBuffer lb =
        java.nio.ByteBuffer.wrap(Files.readAllBytes(p))
            .order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .asLongBuffer();
    long[] v = new long[lb.remaining()];
    lb.get(v);
    return v;
  }

  /**
   * The bench's precision graphs, all by {@code kiln quantize} of the FP32 export: the FP16 graph
   * ({@code bert_base_fp16_kiln.onnx}) and one INT8 Q/DQ graph per placement ({@code
   * bert_base_qdq[_P].onnx}: full = every MatMul, w = weighted MatMuls only, r = every MatMul and
   * the residual Adds, 0 = without smoothing), calibrated with {@code method} on the implicit
   * calibrator's batches, and its float16 form ({@code _fp16.onnx}) for the strongly typed builds.
   */
  static void quantize(Path work, int seq, String method, List<String> placements)
      throws IOException {
    Path fp32 = work.resolve("bert_base_fp32.onnx");
    Path calib = work.resolve("calibration");
    if (!Files.isDirectory(calib)) {
      writeCalibration(calib, fp32, seq);
    }
    runQuantize(
        work,
        "fp16",
        List.of(
            "quantize",
            fp32.toString(),
            "--precision",
            "fp16",
            "-o",
            work.resolve("bert_base_fp16_kiln.onnx").toString()));
    for (String placement : placements) {
      String p = placement.trim();
      List<String> flags = PLACEMENTS.get(p);
      if (flags == null) {
        throw new IllegalArgumentException(
            "unknown placement " + p + "; known: " + PLACEMENTS.keySet());
      }
      String file = p.equals("full") ? "bert_base_qdq.onnx" : "bert_base_qdq_" + p + ".onnx";
      List<String> args =
          new ArrayList<>(
              List.of(
                  "quantize",
                  fp32.toString(),
                  "--precision",
                  "int8",
                  "--calibration",
                  calib.toString(),
                  "--method",
                  method,
                  "-o",
                  work.resolve(file).toString()));
      Path cache = work.resolve("calibration-" + p + ".json");
      args.addAll(List.of("--cache", cache.toString()));
      args.addAll(flags);
      runQuantize(work, p, args);
      // The strongly typed variants' graph: the same Q/DQ from the same cache, in float16.
      List<String> half = new ArrayList<>(args);
      half.set(
          half.indexOf("-o") + 1, work.resolve(file.replace(".onnx", "_fp16.onnx")).toString());
      half.add("--float16");
      runQuantize(work, p + " float16", half);
    }
  }

  private static void runQuantize(Path work, String name, List<String> args) throws IOException {
    long t0 = System.nanoTime();
    int rc = io.kiln.cli.KilnCli.execute(args.toArray(String[]::new));
    double s = (System.nanoTime() - t0) / 1e9;
    if (rc != 0) {
      throw new IllegalStateException("kiln quantize failed (exit " + rc + ")");
    }
    appendRow(
        work,
        "quantize",
        JSON.createObjectNode()
            .put("graph", name)
            .put("command", "kiln " + String.join(" ", args))
            .put("seconds", s));
  }

  private static double kilnBuild(List<String> args) {
    BuildCommand cmd = new BuildCommand();
    long t0 = System.nanoTime();
    int rc = new CommandLine(cmd).execute(args.toArray(String[]::new));
    double s = (System.nanoTime() - t0) / 1e9;
    if (rc != 0) {
      throw new IllegalStateException("kiln build failed (exit " + rc + ")");
    }
    return s;
  }

  static ObjectNode measure(
      TrtEngine engine,
      NvmlMonitor nvml,
      Map<String, Tensor> in,
      int batch,
      int seq,
      boolean graphs,
      double seconds) {
    for (int i = 0; i < 20; i++) {
      engine.run(in, graphs).values().forEach(Tensor::close);
    }
    List<Long> lat = new ArrayList<>();
    nvml.start();
    long start = System.nanoTime();
    long end = start + (long) (seconds * 1e9);
    while (System.nanoTime() < end || lat.size() < 30) {
      long t0 = System.nanoTime();
      engine.run(in, graphs).values().forEach(Tensor::close);
      lat.add(System.nanoTime() - t0);
    }
    double elapsed = (System.nanoTime() - start) / 1e9;
    double[] util = nvml.stop();
    long[] mem = Cuda.memInfo();
    int iters = Math.max(20, Math.min(2000, lat.size()));
    double deviceOnly = engine.timeDeviceOnly(in, graphs, iters);
    long[] sorted = lat.stream().mapToLong(Long::longValue).sorted().toArray();
    ObjectNode row = JSON.createObjectNode();
    row.put("batch", batch)
        .put("seq", seq)
        .put("graphs", graphs)
        .put("runs", sorted.length)
        .put("p50_us", sorted[sorted.length / 2] / 1e3)
        .put("p99_us", percentileMicros(sorted, 0.99))
        .put("mean_us", Arrays.stream(sorted).average().orElse(0) / 1e3)
        .put("items_per_s", batch * sorted.length / elapsed)
        .put("device_only_us", deviceOnly)
        .put("device_only_items_per_s", batch / (deviceOnly / 1e6))
        .put("gpu_util", util[0])
        .put("mem_mib", (long) util[1])
        .put("process_device_mib", (mem[1] - mem[0]) >> 20);
    return row;
  }

  /** The {@code q} quantile (nearest rank) of sorted nanosecond latencies, in microseconds. */
  static double percentileMicros(long[] sortedNanos, double q) {
    int rank = (int) Math.ceil(sortedNanos.length * q) - 1;
    return sortedNanos[Math.max(0, Math.min(sortedNanos.length - 1, rank))] / 1e3;
  }

  /** Random token ids (vocabulary of BERT-base), full attention mask, token type 0. */
  static Map<String, Tensor> inputs(TrtEngine engine, int batch, int seq, Random rnd) {
    Map<String, Tensor> m = new LinkedHashMap<>();
    for (TensorInfo t : engine.inputs()) {
      long[] v = new long[batch * seq];
      String n = t.name().toLowerCase(java.util.Locale.ROOT);
      for (int i = 0; i < v.length; i++) {
        v[i] = n.contains("mask") ? 1 : n.contains("type") ? 0 : 1 + rnd.nextInt(30000);
      }
      m.put(t.name(), Tensor.of(v, batch, seq));
    }
    return m;
  }

  /**
   * Eight random batches of 8 x seq rows of varied length for each input of {@code model} (token
   * ids, a mask of ones then zeros, token types zero), in the kiln run input format.
   */
  static void writeCalibration(Path dir, Path model, int seq) throws IOException {
    Files.createDirectories(dir);
    io.kiln.model.onnx.OnnxModel onnx = io.kiln.model.onnx.OnnxModel.load(model);
    List<String> names = onnx.inputNames();
    // BERT-base's ids; a smaller word embedding (the public test BERT) bounds them lower.
    long vocab = 30001;
    for (io.kiln.model.onnx.Node n : onnx.nodes()) {
      if (n.opType().equals("Gather") && n.input(1).equals("input_ids")) {
        io.kiln.model.onnx.Proto table = onnx.initializers().get(n.input(0));
        if (table != null) {
          vocab = Math.min(vocab, io.kiln.model.onnx.TensorProtos.dims(table)[0]);
        }
      }
    }
    Random rnd = new Random(7);
    for (int f = 0; f < 8; f++) {
      long[] ids = new long[8 * seq];
      long[] mask = new long[8 * seq];
      for (int r = 0; r < 8; r++) {
        int len = 16 + rnd.nextInt(seq - 15);
        for (int t = 0; t < seq; t++) {
          ids[r * seq + t] = 1 + rnd.nextInt((int) vocab - 1);
          mask[r * seq + t] = t < len ? 1 : 0;
        }
      }
      Map<String, Tensor> batch = new LinkedHashMap<>();
      for (String name : names) {
        String n = name.toLowerCase(java.util.Locale.ROOT);
        long[] v = n.contains("mask") ? mask : n.contains("type") ? new long[8 * seq] : ids;
        batch.put(name, Tensor.of(v, 8, seq));
      }
      try {
        TensorJson.write(batch, dir.resolve(String.format("batch%02d.json", f)));
      } finally {
        batch.values().forEach(Tensor::close);
      }
    }
  }

  static synchronized void appendRow(Path work, String key, JsonNode row) throws IOException {
    Path file = work.resolve("results.json");
    ObjectNode root =
        Files.exists(file) ? (ObjectNode) JSON.readTree(file.toFile()) : JSON.createObjectNode();
    // The quantize phase also runs on machines without a GPU.
    if (!root.has("device") && Cuda.isAvailable()) {
      root.put("device", Cuda.deviceName())
          .put("compute_capability", Cuda.computeCapability())
          .put("cuda_runtime", Cuda.runtimeVersion())
          .put("cuda_driver_api", Cuda.driverCudaVersion())
          .put("tensorrt", TrtLibrary.version());
      try (NvmlMonitor n = new NvmlMonitor()) {
        root.put("driver", n.driverVersion());
      }
    }
    ArrayNode list = root.has(key) ? (ArrayNode) root.get(key) : root.putArray(key);
    list.add(row);
    String now = java.time.Instant.now().toString();
    if (!root.has("first_measured_at")) {
      root.put("first_measured_at", now);
    }
    root.put("last_measured_at", now);
    JSON.writeValue(file.toFile(), root);
  }
}
