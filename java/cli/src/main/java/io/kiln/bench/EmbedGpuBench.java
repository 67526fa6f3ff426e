package io.kiln.bench;

import io.kiln.Device;
import io.kiln.Precision;
import io.kiln.Tensor;
import io.kiln.embedding.EmbeddingOptions;
import io.kiln.embedding.TextEmbedder;
import io.kiln.model.Npy;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Texts per second of sentence embedding on the GPU: Kiln on TensorRT FP16 over mixed-length texts
 * made as {@link EmbedCpuBench} makes them (6000 by default: rounds of 1200 last about 50 ms on an
 * H200, too short to time steadily), for the sentence-transformers peer in {@code
 * bench/gpu/st_peer.py} to be set against. Each batch size gets its own engine, whose one dynamic
 * profile is tuned for that batch (batch 1 to B, optimum B; sequence 1 to 512, optimum 128), so the
 * figure is not held back by an engine tuned for batch 1.
 *
 * <p>Usage: {@code EmbedGpuBench MODEL_DIR SENTENCES.txt OUT_DIR [texts=6000] [rounds=5]
 * [batches=32,64,128]}. MODEL_DIR is a sentence-transformers directory (model.onnx, tokenizer.json,
 * modules.json, 1_Pooling). Writes to OUT_DIR: {@code embed-gpu-kiln.json} (per batch size: build
 * seconds, texts/s per round and median; the best batch's figure as the headline), {@code
 * texts.jsonl} (one JSON string a line, the texts embedded, for the peer) and {@code
 * kiln-embeddings.npy} (float32, texts x dimension in text order, from the best batch size).
 * Engines are cached under {@code $TMPDIR/kiln-embed-gpu-cache}, so a second run on the same
 * machine skips the builds.
 */
public final class EmbedGpuBench {
  private EmbedGpuBench() {}

  /** One batch size's figures. */
  private record BatchRun(
      int batch, double buildSeconds, List<Double> textsPerSecond, float[][] vectors) {
    double median() {
      return ModelBenchmark.median(textsPerSecond);
    }
  }

  public static void main(String[] args) throws IOException {
    if (args.length < 3) {
      System.err.println(
          "usage: EmbedGpuBench MODEL_DIR SENTENCES.txt OUT_DIR [texts=6000] [rounds=5]"
              + " [batches=32,64,128]");
      System.exit(2);
    }
    Path modelDir = Path.of(args[0]);
    Path sentences = Path.of(args[1]);
    Path out = Path.of(args[2]);
    int count = args.length > 3 ? Integer.parseInt(args[3]) : 6000;
    int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 5;
    int[] batches =
        Arrays.stream((args.length > 5 ? args[5] : "32,64,128").split(","))
            .mapToInt(Integer::parseInt)
            .toArray();
    List<String> texts = EmbedCpuBench.mixedTexts(Files.readAllLines(sentences), count, 42);
    Files.createDirectories(out);
    writeTexts(out.resolve("texts.jsonl"), texts);
    Path cache = Path.of(System.getProperty("java.io.tmpdir"), "kiln-embed-gpu-cache");

    List<BatchRun> runs = new ArrayList<>();
    String device = null;
    for (int batch : batches) {
      System.err.printf(
          Locale.ROOT,
          "batch %d: opening the TensorRT FP16 engine (a first build takes a minute or more)%n",
          batch);
      long buildStart = System.nanoTime();
      try (TextEmbedder embedder = open(modelDir, batch, cache)) {
        double buildSeconds = (System.nanoTime() - buildStart) / 1e9;
        device = embedder.session().deviceDescription();
        System.err.printf(
            Locale.ROOT,
            "batch %d: engine ready in %.1f s on %s (%s)%n",
            batch,
            buildSeconds,
            device,
            embedder.session().backendName());
        // Warm-up: one full pass, so every (batch, sequence) bucket has its CUDA graph captured.
        embedder.embed(texts);
        List<Double> perRound = new ArrayList<>();
        float[][] vectors = null;
        for (int round = 0; round < rounds; round++) {
          long start = System.nanoTime();
          vectors = embedder.embed(texts);
          double rate = texts.size() / ((System.nanoTime() - start) / 1e9);
          perRound.add(rate);
          System.err.printf(
              Locale.ROOT, "batch %d round %d: %.1f texts/s%n", batch, round + 1, rate);
        }
        runs.add(new BatchRun(batch, buildSeconds, perRound, vectors));
      }
    }
    BatchRun best = runs.get(0);
    for (BatchRun r : runs) {
      best = r.median() > best.median() ? r : best;
    }
    writeVectors(out.resolve("kiln-embeddings.npy"), best.vectors());
    writeReport(out.resolve("embed-gpu-kiln.json"), device, texts.size(), rounds, runs, best);
    System.err.printf(
        Locale.ROOT,
        "Kiln TensorRT FP16: %.1f texts/s (median, batch %d)%n",
        best.median(),
        best.batch());
  }

  /**
   * The embedder at batch size {@code batch}: the engine's profile is tuned for it and the embedder
   * fills it (TextEmbedder caps its batches at the session's maximum).
   */
  private static TextEmbedder open(Path modelDir, int batch, Path cache) {
    try {
      return TextEmbedder.open(
          modelDir,
          EmbeddingOptions.defaults().withBatchSize(batch),
          b ->
              b.device(Device.CUDA)
                  .precision(Precision.FP16)
                  .maxBatchSize(batch)
                  .batchSize(batch)
                  .cacheDir(cache));
    } catch (RuntimeException e) {
      System.err.println(
          "EmbedGpuBench: cannot open "
              + modelDir
              + " on TensorRT FP16 (it needs a CUDA GPU and the TensorRT libraries): "
              + e.getMessage());
      throw e;
    }
  }

  private static void writeTexts(Path file, List<String> texts) throws IOException {
    StringBuilder lines = new StringBuilder();
    for (String t : texts) {
      lines.append(ReportFiles.JSON.writeValueAsString(t)).append('\n');
    }
    Files.writeString(file, lines.toString());
  }

  /** The embeddings as one texts x dimension float32 .npy array, in text order. */
  private static void writeVectors(Path file, float[][] vectors) {
    int dim = vectors[0].length;
    float[] flat = new float[vectors.length * dim];
    for (int i = 0; i < vectors.length; i++) {
      System.arraycopy(vectors[i], 0, flat, i * dim, dim);
    }
    try (Tensor t = Tensor.of(flat, vectors.length, dim)) {
      Npy.write(t, file);
    }
  }

  private static void writeReport(
      Path file, String device, int texts, int rounds, List<BatchRun> runs, BatchRun best) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("system", "Kiln TensorRT FP16");
    json.put("date", Instant.now().toString());
    json.put("device", device);
    json.put("machine", MachineInfo.describe());
    json.put("texts", texts);
    json.put("dimension", best.vectors()[0].length);
    json.put("rounds", rounds);
    Map<String, Object> perBatch = new LinkedHashMap<>();
    for (BatchRun r : runs) {
      Map<String, Object> one = new LinkedHashMap<>();
      one.put("build_seconds", r.buildSeconds());
      one.put("texts_per_second", r.textsPerSecond());
      one.put("median", r.median());
      perBatch.put(Integer.toString(r.batch()), one);
    }
    json.put("batches", perBatch);
    json.put("batch_size", best.batch());
    json.put("build_seconds", best.buildSeconds());
    json.put("texts_per_second", best.textsPerSecond());
    json.put("median_texts_per_second", best.median());
    ReportFiles.writeJson(file, json);
  }
}
