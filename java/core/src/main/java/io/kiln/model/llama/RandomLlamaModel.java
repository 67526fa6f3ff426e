package io.kiln.model.llama;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kiln.DType;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.model.safetensors.SafetensorsModel;
import io.kiln.model.safetensors.SafetensorsWriter;
import io.kiln.util.StagedDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * Writes a Hugging Face model directory of a Llama-family shape with seeded random weights, so real
 * shapes can be benchmarked without downloads. Weights stream to disk chunk by chunk; each chunk
 * has its own seed, so the output depends only on the seed, not on threads or chunk order.
 */
public final class RandomLlamaModel {
  private static final int CHUNK = 1 << 20;
  private static final int CHUNKS_IN_FLIGHT = 16;

  /** Shards above this size are split, as Hugging Face does. */
  public static final long DEFAULT_SHARD_BYTES = 2L << 30;

  private RandomLlamaModel() {}

  /** The config.json of a named shape: {@code llama-3.2-1b}, {@code llama-3-8b} or {@code tiny}. */
  public static ObjectNode shape(String name) {
    ObjectNode c = new ObjectMapper().createObjectNode();
    c.putArray("architectures").add("LlamaForCausalLM");
    c.put("model_type", "llama");
    c.put("hidden_act", "silu");
    c.put("attention_bias", false);
    c.put("mlp_bias", false);
    c.put("initializer_range", 0.02);
    switch (name) {
      case "llama-3.2-1b":
        dims(c, 2048, 8192, 16, 32, 8, 64, 128256, 131072);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 500000.0);
        llama3Scaling(c, 32.0, 1.0, 4.0, 8192);
        c.put("tie_word_embeddings", true);
        c.put("bos_token_id", 128000);
        c.put("eos_token_id", 128001);
        break;
      case "llama-3-8b":
        dims(c, 4096, 14336, 32, 32, 8, 128, 128256, 8192);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 500000.0);
        c.putNull("rope_scaling");
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 128000);
        c.put("eos_token_id", 128001);
        break;
      case "tiny":
        // Small enough for unit tests, yet with GQA, tied embeddings and llama3 rope scaling.
        dims(c, 64, 172, 2, 4, 2, 16, 256, 512);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", 10000.0);
        llama3Scaling(c, 4.0, 1.0, 4.0, 128);
        c.put("tie_word_embeddings", true);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        break;
      default:
        throw new InvalidInputException(
            "unknown shape '"
                + name
                + "'; use llama-3.2-1b, llama-3-8b, tiny or a config.json path");
    }
    return c;
  }

  private static void dims(
      ObjectNode c,
      int hidden,
      int ff,
      int layers,
      int heads,
      int kvHeads,
      int headDim,
      int vocab,
      int maxPositions) {
    c.put("hidden_size", hidden);
    c.put("intermediate_size", ff);
    c.put("num_hidden_layers", layers);
    c.put("num_attention_heads", heads);
    c.put("num_key_value_heads", kvHeads);
    c.put("head_dim", headDim);
    c.put("vocab_size", vocab);
    c.put("max_position_embeddings", maxPositions);
  }

  private static void llama3Scaling(
      ObjectNode c, double factor, double low, double high, int original) {
    ObjectNode s = c.putObject("rope_scaling");
    s.put("rope_type", "llama3");
    s.put("factor", factor);
    s.put("low_freq_factor", low);
    s.put("high_freq_factor", high);
    s.put("original_max_position_embeddings", original);
  }

  /** A tensor to generate: normal with {@code std}, or all ones when std is 0 (norm weights). */
  record Spec(String name, long[] shape, double std) {
    long elements() {
      long n = 1;
      for (long d : shape) {
        n *= d;
      }
      return n;
    }
  }

  /** Name and shape of every tensor written for {@code config}, in Hugging Face's order. */
  public static Map<String, long[]> tensorShapes(LlamaConfig config) {
    Map<String, long[]> shapes = new LinkedHashMap<>();
    tensors(config).forEach(t -> shapes.put(t.name(), t.shape()));
    return shapes;
  }

  /** Every tensor of the model, in Hugging Face's order. */
  static List<Spec> tensors(LlamaConfig c) {
    long h = c.hiddenSize();
    long q = c.queryDim();
    long kv = c.kvDim();
    long ff = c.intermediateSize();
    // Fan-in scaling keeps activations near unit size; the embedding is larger so that, when it is
    // also the lm_head, logits have a spread of about 2 and are far from uniform.
    double embeddingStd = 2.0 / Math.sqrt(h);
    double biasStd = 0.02;
    List<Spec> t = new ArrayList<>();
    t.add(new Spec(LlamaTensors.embedding(), new long[] {c.vocabSize(), h}, embeddingStd));
    for (int i = 0; i < c.numLayers(); i++) {
      LlamaTensors.Layer names = LlamaTensors.layer(i);
      t.add(new Spec(names.attentionNorm(), new long[] {h}, 0));
      t.add(new Spec(names.qProj(), new long[] {q, h}, 1 / Math.sqrt(h)));
      t.add(new Spec(names.kProj(), new long[] {kv, h}, 1 / Math.sqrt(h)));
      t.add(new Spec(names.vProj(), new long[] {kv, h}, 1 / Math.sqrt(h)));
      if (c.qkvBias()) {
        t.add(new Spec(names.qProjBias(), new long[] {q}, biasStd));
        t.add(new Spec(names.kProjBias(), new long[] {kv}, biasStd));
        t.add(new Spec(names.vProjBias(), new long[] {kv}, biasStd));
      }
      t.add(new Spec(names.oProj(), new long[] {h, q}, 1 / Math.sqrt(q)));
      if (c.outputBias()) {
        t.add(new Spec(names.oProjBias(), new long[] {h}, biasStd));
      }
      t.add(new Spec(names.mlpNorm(), new long[] {h}, 0));
      t.add(new Spec(names.gateProj(), new long[] {ff, h}, 1 / Math.sqrt(h)));
      t.add(new Spec(names.upProj(), new long[] {ff, h}, 1 / Math.sqrt(h)));
      t.add(new Spec(names.downProj(), new long[] {h, ff}, 1 / Math.sqrt(ff)));
      if (c.mlpBias()) {
        t.add(new Spec(names.gateProjBias(), new long[] {ff}, biasStd));
        t.add(new Spec(names.upProjBias(), new long[] {ff}, biasStd));
        t.add(new Spec(names.downProjBias(), new long[] {h}, biasStd));
      }
    }
    t.add(new Spec(LlamaTensors.finalNorm(), new long[] {h}, 0));
    if (!c.tieWordEmbeddings()) {
      t.add(new Spec(LlamaTensors.lmHead(), new long[] {c.vocabSize(), h}, 1 / Math.sqrt(h)));
    }
    return t;
  }

  /**
   * Writes config.json, generation_config.json and the weights (sharded with an index above {@code
   * shardBytes}) into {@code out}. {@code progress} receives a fraction done, 0 to 1.
   */
  public static void write(
      ObjectNode config,
      long seed,
      DType dtype,
      Path out,
      long shardBytes,
      Consumer<Double> progress) {
    write(config, seed, dtype, out, shardBytes, false, progress);
  }

  /**
   * As above; the config is validated first, a model larger than the free disk is refused unless
   * {@code force}, and the files are written to a staging folder beside {@code out} that is moved
   * into place only when complete, so a failure never leaves a partial model.
   */
  public static void write(
      ObjectNode config,
      long seed,
      DType dtype,
      Path out,
      long shardBytes,
      boolean force,
      Consumer<Double> progress) {
    if (!dtype.isFloatingPoint()) {
      throw new InvalidInputException(
          "weights dtype must be f32, f16 or bf16, got " + dtype.onnxName());
    }
    ObjectNode cfg = config.deepCopy();
    cfg.put("torch_dtype", dtype.onnxName());
    LlamaConfig parsed = LlamaConfig.parse(cfg, "config");
    List<Spec> specs = tensors(parsed);
    long totalBytes = totalBytes(specs, dtype);
    Path target = out.toAbsolutePath();
    checkTarget(target);
    if (!force) {
      checkDisk(target, totalBytes);
    }
    try {
      StagedDirectory.write(
          target,
          staging -> writeInto(cfg, parsed, specs, seed, dtype, staging, shardBytes, progress));
    } catch (IOException e) {
      throw new ModelException("cannot write model to " + out + ": " + e.getMessage(), e);
    }
  }

  /** The weights' bytes; a config whose size does not fit a long is no model. */
  static long totalBytes(List<Spec> specs, DType dtype) {
    try {
      long total = 0;
      for (Spec s : specs) {
        total = Math.addExact(total, Math.multiplyExact(s.elements(), dtype.byteSize()));
      }
      return total;
    } catch (ArithmeticException e) {
      throw new ModelException("the config describes more weight bytes than a long can count");
    }
  }

  private static void checkTarget(Path target) {
    if (Files.isRegularFile(target)) {
      throw new InvalidInputException("output " + target + " is a file, not a directory");
    }
    if (Files.isDirectory(target)) {
      try (var entries = Files.list(target)) {
        if (entries.findAny().isPresent()) {
          throw new InvalidInputException("output directory " + target + " is not empty");
        }
      } catch (IOException e) {
        throw new InvalidInputException("cannot read output directory " + target + ": " + e);
      }
    }
  }

  private static void checkDisk(Path target, long totalBytes) {
    Path existing = target.getParent();
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null) {
      return;
    }
    try {
      long free = Files.getFileStore(existing).getUsableSpace();
      if (totalBytes > free) {
        throw new InvalidInputException(
            String.format(
                java.util.Locale.ROOT,
                "the model needs %.1f GB but %s has %.1f GB free (--force writes anyway)",
                totalBytes / 1e9,
                existing,
                free / 1e9));
      }
    } catch (IOException e) {
      throw new InvalidInputException("cannot tell the free space of " + existing + ": " + e);
    }
  }

  private static void writeInto(
      ObjectNode cfg,
      LlamaConfig parsed,
      List<Spec> specs,
      long seed,
      DType dtype,
      Path out,
      long shardBytes,
      Consumer<Double> progress)
      throws IOException {
    List<List<Spec>> shards = shard(specs, dtype, shardBytes);
    long totalElements = specs.stream().mapToLong(Spec::elements).sum();
    Files.createDirectories(out);
    ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    mapper.writeValue(out.resolve("config.json").toFile(), cfg);
    ObjectNode generation = mapper.createObjectNode();
    generation.put("bos_token_id", parsed.bosTokenId());
    generation.put("eos_token_id", parsed.eosTokenId());
    generation.put("do_sample", false);
    mapper.writeValue(out.resolve("generation_config.json").toFile(), generation);

    long done = 0;
    Map<String, String> weightMap = new LinkedHashMap<>();
    float[][] buffers = new float[CHUNKS_IN_FLIGHT][CHUNK];
    for (int s = 0; s < shards.size(); s++) {
      String file =
          shards.size() == 1
              ? "model.safetensors"
              : String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
      List<SafetensorsWriter.Entry> entries = new ArrayList<>();
      for (Spec spec : shards.get(s)) {
        entries.add(new SafetensorsWriter.Entry(spec.name(), dtype, spec.shape()));
        weightMap.put(spec.name(), file);
      }
      try (SafetensorsWriter writer = new SafetensorsWriter(out.resolve(file), entries, Map.of())) {
        for (Spec spec : shards.get(s)) {
          done += writeTensor(writer, spec, seed, buffers);
          progress.accept((double) done / totalElements);
        }
      }
    }
    if (shards.size() > 1) {
      ObjectNode index = mapper.createObjectNode();
      index
          .putObject("metadata")
          .put("total_size", specs.stream().mapToLong(x -> x.elements() * dtype.byteSize()).sum());
      ObjectNode map = index.putObject("weight_map");
      weightMap.forEach(map::put);
      mapper.writeValue(out.resolve(SafetensorsModel.INDEX_FILE).toFile(), index);
    }
  }

  private static List<List<Spec>> shard(List<Spec> specs, DType dtype, long shardBytes) {
    List<List<Spec>> shards = new ArrayList<>();
    List<Spec> current = new ArrayList<>();
    long bytes = 0;
    for (Spec s : specs) {
      long size = s.elements() * dtype.byteSize();
      if (!current.isEmpty() && bytes + size > shardBytes) {
        shards.add(current);
        current = new ArrayList<>();
        bytes = 0;
      }
      current.add(s);
      bytes += size;
    }
    shards.add(current);
    return shards;
  }

  /** Generates up to CHUNKS_IN_FLIGHT chunks in parallel, then writes them in order. */
  private static long writeTensor(
      SafetensorsWriter writer, Spec spec, long seed, float[][] buffers) {
    long elements = spec.elements();
    long chunks = (elements + CHUNK - 1) / CHUNK;
    long nameSeed = seed * 0x9E3779B97F4A7C15L ^ spec.name().hashCode();
    for (long first = 0; first < chunks; first += buffers.length) {
      int inFlight = (int) Math.min(buffers.length, chunks - first);
      long firstChunk = first;
      IntStream.range(0, inFlight)
          .parallel()
          .forEach(
              b -> {
                long chunk = firstChunk + b;
                int count = (int) Math.min(CHUNK, elements - chunk * CHUNK);
                fill(
                    buffers[b],
                    count,
                    spec.std(),
                    new SplittableRandom(nameSeed + 0x632BE59BD9B4E019L * chunk));
              });
      for (int b = 0; b < inFlight; b++) {
        int count = (int) Math.min(CHUNK, elements - (first + b) * CHUNK);
        writer.write(buffers[b], count);
      }
    }
    return elements;
  }

  private static void fill(float[] buffer, int count, double std, SplittableRandom random) {
    for (int i = 0; i < count; i++) {
      buffer[i] = std == 0 ? 1f : (float) (random.nextGaussian() * std);
    }
  }
}
