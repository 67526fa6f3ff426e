package io.kiln.bench;

import dev.langchain4j.data.segment.TextSegment;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.embedding.DefaultEmbeddingModel;
import io.kiln.embedding.EmbeddingOptions;
import io.kiln.embedding.TextEmbedder;
import io.kiln.precision.PrecisionOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.knowm.xchart.XYChart;

/**
 * Texts per second of sentence embedding on the CPU: langchain4j's {@code embedAll} against Kiln
 * FP32 and Kiln INT8 (calibrated Q/DQ) on the same all-MiniLM-L6-v2, the same texts of mixed
 * lengths, in one process. The three take turns within each round (the first rotates) so machine
 * load falls on all. Kiln opens the model as a sentence-transformers directory, so both sides
 * truncate at the tokenizer's 128 tokens and do the same work. Also reports how closely INT8
 * follows FP32, and FP32 follows langchain4j.
 *
 * <p>Arguments: {@code SENTENCES.txt CALIBRATION.txt OUT_PREFIX [texts] [rounds]}.
 */
public final class EmbedCpuBench {
  private static final String LANGCHAIN4J = "langchain4j embedAll (FP32)";
  private static final String KILN_FP32 = "Kiln FP32";
  private static final String KILN_INT8 = "Kiln INT8";

  private EmbedCpuBench() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 3) {
      System.err.println(
          "usage: EmbedCpuBench SENTENCES.txt CALIBRATION.txt OUT_PREFIX [texts] [rounds]");
      System.exit(2);
    }
    Path sentences = Path.of(args[0]);
    Path calibration = Path.of(args[1]);
    String out = args[2];
    int count = args.length > 3 ? Integer.parseInt(args[3]) : 1200;
    int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 3;
    List<String> texts = mixedTexts(Files.readAllLines(sentences), count, 42);
    String loadBefore = ReportFiles.loadAverage();
    Path dir = miniLmDirectory();
    PrecisionOptions int8 =
        PrecisionOptions.defaults()
            .withCalibration("texts:" + calibration)
            .withTokenizer(dir.resolve("tokenizer.json"));
    Path cache = Files.createTempDirectory("kiln-embed-bench");
    AllMiniLmL6V2EmbeddingModel peer = new AllMiniLmL6V2EmbeddingModel();
    List<TextSegment> segments = texts.stream().map(TextSegment::from).toList();
    Map<String, List<Double>> textsPerSecond = new LinkedHashMap<>();
    Map<String, float[][]> vectors = new LinkedHashMap<>();
    int runSize;
    try (TextEmbedder fp32 =
            TextEmbedder.open(dir, EmbeddingOptions.defaults(), b -> b.device(Device.CPU));
        TextEmbedder quantized =
            TextEmbedder.open(
                dir,
                EmbeddingOptions.defaults(),
                b ->
                    b.device(Device.CPU)
                        .precision(Precision.INT8)
                        .precisionOptions(int8)
                        .cacheDir(cache))) {
      runSize = fp32.batchSize();
      Map<String, java.util.function.Supplier<float[][]>> runs = new LinkedHashMap<>();
      runs.put(
          LANGCHAIN4J,
          () ->
              peer.embedAll(segments).content().stream()
                  .map(e -> e.vector())
                  .toArray(float[][]::new));
      runs.put(KILN_FP32, () -> fp32.embed(texts));
      runs.put(KILN_INT8, () -> quantized.embed(texts));
      // Warm-up: one pass of 100 texts each (JIT, ORT arenas), untimed.
      peer.embedAll(segments.subList(0, 100));
      fp32.embed(texts.subList(0, 100));
      quantized.embed(texts.subList(0, 100));
      List<String> names = new ArrayList<>(runs.keySet());
      for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < names.size(); k++) {
          String name = names.get((round + k) % names.size());
          long start = System.nanoTime();
          float[][] v = runs.get(name).get();
          double seconds = (System.nanoTime() - start) / 1e9;
          textsPerSecond.computeIfAbsent(name, n -> new ArrayList<>()).add(texts.size() / seconds);
          vectors.put(name, v);
          System.err.printf(
              Locale.ROOT,
              "round %d %-28s %7.1f texts/s%n",
              round + 1,
              name,
              texts.size() / seconds);
        }
      }
    }
    report(
        out, texts, rounds, runSize, textsPerSecond, vectors, loadBefore, calibration, sentences);
  }

  private static void report(
      String out,
      List<String> texts,
      int rounds,
      int runSize,
      Map<String, List<Double>> textsPerSecond,
      Map<String, float[][]> vectors,
      String loadBefore,
      Path calibration,
      Path sentences) {
    double peer = ModelBenchmark.median(textsPerSecond.get(LANGCHAIN4J));
    double fp32 = ModelBenchmark.median(textsPerSecond.get(KILN_FP32));
    double int8 = ModelBenchmark.median(textsPerSecond.get(KILN_INT8));
    double[] int8Cos = cosines(vectors.get(KILN_INT8), vectors.get(KILN_FP32));
    double[] fp32Cos = cosines(vectors.get(KILN_FP32), vectors.get(LANGCHAIN4J));
    int[] words = texts.stream().mapToInt(t -> t.split(" ").length).toArray();
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("date", Instant.now().toString());
    json.put("machine", MachineInfo.describe());
    json.put("texts", texts.size());
    json.put("words_min", Arrays.stream(words).min().orElse(0));
    json.put("words_max", Arrays.stream(words).max().orElse(0));
    json.put("words_mean", Arrays.stream(words).average().orElse(0));
    json.put("rounds", rounds);
    json.put("kiln_texts_per_run", runSize);
    json.put("texts_per_second", textsPerSecond);
    json.put(
        "median_texts_per_second", Map.of(LANGCHAIN4J, peer, KILN_FP32, fp32, KILN_INT8, int8));
    json.put("fp32_over_langchain4j", fp32 / peer);
    json.put("int8_over_langchain4j", int8 / peer);
    json.put("int8_vs_fp32_mean_cosine", mean(int8Cos));
    json.put("int8_vs_fp32_min_cosine", Arrays.stream(int8Cos).min().orElse(0));
    json.put("fp32_vs_langchain4j_min_cosine", Arrays.stream(fp32Cos).min().orElse(0));
    String loadAfter = ReportFiles.loadAverage();
    json.put("load_before", loadBefore);
    json.put("load_after", loadAfter);
    ReportFiles.writeJson(Path.of(out + ".json"), json);

    StringBuilder md = new StringBuilder();
    md.append("# Sentence embedding on the CPU: Kiln against langchain4j embedAll\n\n");
    md.append("- date: ").append(json.get("date")).append('\n');
    md.append("- machine: ").append(json.get("machine")).append('\n');
    md.append(ReportFiles.loadLine(loadBefore, loadAfter));
    md.append(
        String.format(
            Locale.ROOT,
            "- %d texts of %d to %d words (mean %.1f) built from %s, the same for all three;"
                + " all-MiniLM-L6-v2, both sides truncating at the tokenizer's 128 tokens%n",
            texts.size(),
            json.get("words_min"),
            json.get("words_max"),
            json.get("words_mean"),
            sentences));
    md.append(
        String.format(
            Locale.ROOT,
            "- %d rounds, each embedding all texts once per system, the order rotating; Kiln"
                + " sorts by token length and runs padded batches of up to %d (ONNX Runtime's"
                + " preferred run on the CPU); INT8 calibrated on %s%n",
            rounds,
            runSize,
            calibration));
    md.append("- command: `bench/cpu-embed.sh`\n\n");
    md.append(
        String.format(
            Locale.ROOT,
            "**Kiln FP32 %.2fx and Kiln INT8 %.2fx langchain4j's texts/s; INT8 mean cosine to FP32"
                + " %.5f (min %.5f); FP32 min cosine to langchain4j %.6f**%n%n",
            fp32 / peer,
            int8 / peer,
            mean(int8Cos),
            Arrays.stream(int8Cos).min().orElse(0),
            Arrays.stream(fp32Cos).min().orElse(0)));
    md.append("| system | median texts/s | per round |\n|---|---|---|\n");
    for (Map.Entry<String, List<Double>> e : textsPerSecond.entrySet()) {
      md.append("| ")
          .append(e.getKey())
          .append(" | ")
          .append(String.format(Locale.ROOT, "%.1f", ModelBenchmark.median(e.getValue())))
          .append(" | ");
      List<String> per = new ArrayList<>();
      e.getValue().forEach(v -> per.add(String.format(Locale.ROOT, "%.1f", v)));
      md.append(String.join(", ", per)).append(" |\n");
    }
    ReportFiles.writeText(Path.of(out + ".md"), md.toString());

    XYChart chart =
        Charts.lines(800, 450, "Texts per second, all-MiniLM-L6-v2 on the CPU", "round", "texts/s");
    for (Map.Entry<String, List<Double>> e : textsPerSecond.entrySet()) {
      double[] x = new double[e.getValue().size()];
      for (int i = 0; i < x.length; i++) {
        x[i] = i + 1;
      }
      Charts.addLine(
          chart, e.getKey(), x, e.getValue().stream().mapToDouble(Double::doubleValue).toArray());
    }
    Charts.savePng(Path.of(out + ".png"), List.of(chart));
    System.out.print(md);
  }

  /**
   * {@code count} texts cut from runs of the given sentences: most of 5 to 60 words, one in eight
   * of 60 to 160 (past MiniLM's 128 tokens), seeded so every run embeds the same texts.
   */
  static List<String> mixedTexts(List<String> sentences, int count, long seed) {
    List<String> words = new ArrayList<>();
    for (String s : sentences) {
      if (!s.isBlank()) {
        words.addAll(Arrays.asList(s.trim().split("\\s+")));
      }
    }
    Random random = new Random(seed);
    List<String> texts = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      int length = random.nextInt(8) == 0 ? 60 + random.nextInt(101) : 5 + random.nextInt(56);
      int start = random.nextInt(words.size());
      StringBuilder sb = new StringBuilder();
      for (int w = 0; w < length; w++) {
        sb.append(w == 0 ? "" : " ").append(words.get((start + w) % words.size()));
      }
      texts.add(sb.toString());
    }
    return texts;
  }

  /** The embedded MiniLM as a sentence-transformers directory (mean pooling, normalized). */
  private static Path miniLmDirectory() throws IOException {
    Path dir = Files.createTempDirectory("kiln-minilm-dir");
    DefaultEmbeddingModel model = DefaultEmbeddingModel.get();
    copyResource(model.modelResource(), dir.resolve("model.onnx"));
    copyResource(model.tokenizerResource(), dir.resolve("tokenizer.json"));
    Files.writeString(
        dir.resolve("modules.json"),
        "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
            + " {\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"},"
            + " {\"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}]");
    Files.createDirectories(dir.resolve("1_Pooling"));
    Files.writeString(
        dir.resolve("1_Pooling").resolve("config.json"), "{\"pooling_mode_mean_tokens\": true}");
    return dir;
  }

  private static void copyResource(String resource, Path to) throws IOException {
    try (InputStream in =
        EmbedCpuBench.class.getClassLoader().getResourceAsStream(resource.substring(1))) {
      if (in == null) {
        throw new IOException("resource not on the classpath: " + resource);
      }
      Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  static double[] cosines(float[][] a, float[][] b) {
    double[] c = new double[a.length];
    for (int i = 0; i < a.length; i++) {
      double dot = 0;
      double na = 0;
      double nb = 0;
      for (int d = 0; d < a[i].length; d++) {
        dot += (double) a[i][d] * b[i][d];
        na += (double) a[i][d] * a[i][d];
        nb += (double) b[i][d] * b[i][d];
      }
      c[i] = dot / Math.sqrt(na * nb);
    }
    return c;
  }

  private static double mean(double[] v) {
    return Arrays.stream(v).average().orElse(0);
  }
}
