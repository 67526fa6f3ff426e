package io.kiln.embedding;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.BackendException;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.model.ModelSource;
import io.kiln.session.Session;
import io.kiln.util.HfTokenizers;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntUnaryOperator;
import java.util.function.UnaryOperator;

/**
 * Sentence embeddings from an encoder: tokenize (with the prompt, truncated to the model's
 * maximum), run in batches of similar length, pool the token states as the model's
 * sentence-transformers files say (or as {@link EmbeddingOptions} override), optionally keep the
 * first N dimensions, then L2-normalize when the model does.
 */
public final class TextEmbedder implements AutoCloseable {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TextEmbedder.class);

  /** The longest input when a model does not say its own, in tokens. */
  public static final int DEFAULT_MAX_TOKENS = ModelDirectory.DEFAULT_MAX_TOKENS;

  /** A chunk of texts tokenized at once covers this many runs, and at least MIN_CHUNK_TEXTS. */
  private static final int RUNS_PER_CHUNK = 2;

  private static final int MIN_CHUNK_TEXTS = 32;

  /**
   * Shared by every embedder: the tokenizer's own batch call spreads a chunk over the cores, and a
   * few threads more let chunks overlap each other's Java-side decoding and the model's runs.
   */
  private static final ExecutorService TOKENIZER_THREADS =
      Executors.newFixedThreadPool(
          Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 4)),
          runnable -> {
            Thread t = new Thread(runnable, "kiln-tokenizer");
            t.setDaemon(true);
            return t;
          });

  private final Session session;
  private final HuggingFaceTokenizer tokenizer;
  private final boolean usesTokenTypes;
  private final String hiddenOutput;
  private final Pooling pooling;
  private final boolean normalize;
  private final String prompt;
  private final int dimensions;
  private final int batchSize;
  private final int unpooledPrefix; // leading tokens pooling skips: the prompt, when excluded
  private final AtomicLong truncated = new AtomicLong();

  /** Mean pooling and L2 normalization (all-MiniLM-L6-v2 and its kin), 32 texts a run. */
  public TextEmbedder(Session session, HuggingFaceTokenizer tokenizer) {
    this(session, tokenizer, Pooling.MEAN, true, "", 0, 0, 32);
  }

  private TextEmbedder(
      Session session,
      HuggingFaceTokenizer tokenizer,
      Pooling pooling,
      boolean normalize,
      String prompt,
      int unpooledPrefix,
      int dimensions,
      int batchSize) {
    for (String required : List.of("input_ids", "attention_mask")) {
      if (session.inputs().stream().noneMatch(i -> i.name().equals(required))) {
        throw new ModelException("an embedding model needs an input named '" + required + "'");
      }
    }
    this.session = session;
    this.tokenizer = tokenizer;
    this.usesTokenTypes =
        session.inputs().stream().anyMatch(i -> i.name().equals("token_type_ids"));
    this.hiddenOutput = hiddenOutput(session);
    this.pooling = pooling;
    this.normalize = normalize;
    this.prompt = prompt;
    // A dynamically quantized model runs one text at a time, or its results would depend on
    // which texts share a batch.
    int rows = batchSize > 0 ? batchSize : session.preferredBatchSize();
    this.batchSize = session.rowsCoupled() ? 1 : Math.min(rows, session.maxBatchSize());
    long hidden = dimension(session, hiddenOutput);
    if (dimensions > 0 && hidden > 0 && dimensions > hidden) {
      throw new InvalidInputException(
          "dimensions " + dimensions + " is more than the model's " + hidden);
    }
    this.dimensions = dimensions;
    this.unpooledPrefix = unpooledPrefix;
  }

  /**
   * The prompt's length as sentence-transformers counts it for include_prompt false: its tokens
   * with the leading special token, without a trailing one.
   */
  private static int promptLength(HuggingFaceTokenizer tokenizer, String prompt) {
    Encoding e = tokenizer.encode(prompt);
    long[] special = e.getSpecialTokenMask();
    int n = e.getIds().length;
    return n > 0 && special[n - 1] == 1 ? n - 1 : n;
  }

  /** The embedded all-MiniLM-L6-v2 (mean pooling, normalized) on the given session options. */
  public static TextEmbedder defaultModel(UnaryOperator<Session.Builder> tune) {
    return defaultModel(tune, EmbeddingOptions.defaults());
  }

  /** The embedded all-MiniLM-L6-v2 with options (its own: mean pooling, normalized). */
  public static TextEmbedder defaultModel(
      UnaryOperator<Session.Builder> tune, EmbeddingOptions options) {
    DefaultEmbeddingModel model = DefaultEmbeddingModel.get();
    SentenceTransformersConfig own =
        new SentenceTransformersConfig(Pooling.MEAN, true, Map.of(), null, null, true);
    HuggingFaceTokenizer tokenizer =
        loadTokenizerResource(model.tokenizerResource(), DEFAULT_MAX_TOKENS);
    return build(
        SessionSource.of(ModelSource.ofResource(model.modelResource()), tune),
        tokenizer,
        own,
        options);
  }

  /** A sentence-transformers directory on the CPU defaults, embedding as the model says. */
  public static TextEmbedder open(Path modelDir) {
    return open(modelDir, EmbeddingOptions.defaults(), b -> b);
  }

  /**
   * A Hugging Face / sentence-transformers directory (see {@link ModelDirectory}). A {@link
   * MissingEmbeddingSettingException} when neither the model nor {@code options} give the pooling
   * or the normalization.
   */
  public static TextEmbedder open(
      Path modelDir, EmbeddingOptions options, UnaryOperator<Session.Builder> tune) {
    ModelDirectory dir = ModelDirectory.open(modelDir);
    settingsCheck(dir.config(), options, dir.dir().toString());
    HuggingFaceTokenizer tokenizer = loadTokenizer(dir.tokenizerJson(), dir.maxTokens());
    return build(
        SessionSource.of(ModelSource.of(dir.onnxFile()), tune), tokenizer, dir.config(), options);
  }

  /**
   * An ONNX file with its tokenizer.json; the sentence-transformers files beside the ONNX file (if
   * any) say how to pool, else {@code options} must.
   */
  public static TextEmbedder open(
      Session.Builder session, Path tokenizerJson, Path configDir, EmbeddingOptions options) {
    SentenceTransformersConfig config =
        configDir != null && Files.isDirectory(configDir)
            ? SentenceTransformersConfig.read(configDir)
            : SentenceTransformersConfig.none();
    settingsCheck(config, options, tokenizerJson.toString());
    return build(
        pooling -> session.build(),
        loadTokenizer(tokenizerJson, DEFAULT_MAX_TOKENS),
        config,
        options);
  }

  /** A model of one's own with mean pooling and normalization (the behaviour before issue 20). */
  public static TextEmbedder open(Session.Builder session, Path tokenizerJson) {
    return open(
        session,
        tokenizerJson,
        null,
        EmbeddingOptions.defaults().withPooling(Pooling.MEAN).withNormalize(true));
  }

  /** Fails with the option to give when the model and the options leave a setting open. */
  public static void settingsCheck(
      SentenceTransformersConfig config, EmbeddingOptions options, String model) {
    if (options.pooling() == null && config.pooling() == null) {
      throw new MissingEmbeddingSettingException(
          model
              + " does not say how to pool (no sentence-transformers Pooling config): give --pooling"
              + " ("
              + Pooling.optionNames()
              + ")",
          "--pooling");
    }
    if (options.normalize() == null && config.normalize() == null) {
      throw new MissingEmbeddingSettingException(
          model
              + " does not say whether to normalize (no modules.json): give --normalize or"
              + " --no-normalize",
          "--normalize");
    }
  }

  /** Opens the session, given how the embedder will pool (the graph may do it). */
  @FunctionalInterface
  private interface SessionSource {
    Session open(PooledGraph.Request pooling);

    /** A session over {@code model}, with the pooling inside its graph where the graph allows. */
    static SessionSource of(ModelSource model, UnaryOperator<Session.Builder> tune) {
      return pooling -> {
        ModelSource pooled = PooledGraph.append(model, pooling);
        if (pooled != null) {
          try {
            return tune.apply(Session.builder(pooled)).build();
          } catch (RuntimeException e) {
            // Pooling in the graph only saves work: a backend that cannot build it still embeds.
            LOG.warn("pooling inside the graph failed ({}); pooling on the host", e.getMessage());
          }
        }
        return tune.apply(Session.builder(model)).build();
      };
    }
  }

  private static TextEmbedder build(
      SessionSource session,
      HuggingFaceTokenizer tokenizer,
      SentenceTransformersConfig config,
      EmbeddingOptions options) {
    try {
      settingsCheck(config, options, "the model");
      Pooling pooling = options.pooling() != null ? options.pooling() : config.pooling();
      boolean normalize = options.normalize() != null ? options.normalize() : config.normalize();
      String prompt = promptText(config, options);
      int unpooledPrefix =
          config.includePrompt() || prompt.isEmpty() ? 0 : promptLength(tokenizer, prompt);
      Session built = session.open(new PooledGraph.Request(pooling, unpooledPrefix));
      try {
        return new TextEmbedder(
            built,
            tokenizer,
            pooling,
            normalize,
            prompt,
            unpooledPrefix,
            options.dimensions(),
            options.batchSize());
      } catch (RuntimeException e) {
        built.close();
        throw e;
      }
    } catch (RuntimeException e) {
      tokenizer.close();
      throw e;
    }
  }

  private static String promptText(SentenceTransformersConfig config, EmbeddingOptions options) {
    if (options.prompt() != null) {
      return options.prompt();
    }
    String name = options.promptName() != null ? options.promptName() : config.defaultPromptName();
    if (name == null) {
      return "";
    }
    String text = config.prompts().get(name);
    if (text == null) {
      throw new InvalidInputException(
          "no prompt named '"
              + name
              + "' in config_sentence_transformers.json; it has: "
              + (config.prompts().isEmpty()
                  ? "none"
                  : String.join(", ", config.prompts().keySet())));
    }
    return text;
  }

  public static HuggingFaceTokenizer loadTokenizer(Path tokenizerJson) {
    return loadTokenizer(tokenizerJson, DEFAULT_MAX_TOKENS);
  }

  /** Texts per run: the options' batch size, or the session's preferred one, within its maximum. */
  public int batchSize() {
    return batchSize;
  }

  /** A tokenizer that truncates to {@code maxTokens} (special tokens included) and never pads. */
  public static HuggingFaceTokenizer loadTokenizer(Path tokenizerJson, int maxTokens) {
    if (!Files.isRegularFile(tokenizerJson)) {
      throw new ModelException("tokenizer file not found: " + tokenizerJson);
    }
    try {
      return HfTokenizers.open(tokenizerJson, tokenizerOptions(maxTokens));
    } catch (IOException | RuntimeException e) {
      throw new ModelException("cannot load tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
    }
  }

  public static HuggingFaceTokenizer loadTokenizerResource(String resource) {
    return loadTokenizerResource(resource, DEFAULT_MAX_TOKENS);
  }

  static HuggingFaceTokenizer loadTokenizerResource(String resource, int maxTokens) {
    String r = resource.startsWith("/") ? resource.substring(1) : resource;
    try (InputStream in = TextEmbedder.class.getClassLoader().getResourceAsStream(r)) {
      if (in == null) {
        throw new ModelException("tokenizer resource not found on the classpath: " + resource);
      }
      return HfTokenizers.open(in, tokenizerOptions(maxTokens));
    } catch (IOException e) {
      throw new ModelException("cannot load tokenizer " + resource + ": " + e.getMessage(), e);
    }
  }

  private static Map<String, String> tokenizerOptions(int maxTokens) {
    return Map.of(
        "padding", "false",
        "truncation", "true",
        "maxLength", Integer.toString(maxTokens));
  }

  /** The graph's pooled vectors ({@link PooledGraph}) where it has them, else its token states. */
  private static String hiddenOutput(Session session) {
    if (session.outputs().stream().anyMatch(o -> o.name().equals(PooledGraph.OUTPUT))) {
      return PooledGraph.OUTPUT;
    }
    TensorInfo states =
        PooledGraph.tokenStates(session.outputs(), TensorInfo::name, TensorInfo::rank);
    if (states == null) {
      throw new ModelException(
          "an embedding model needs a [batch, sequence, hidden] output of token states");
    }
    return states.name();
  }

  /** Whether the session returns pooled vectors rather than token states. */
  private boolean pooledInGraph() {
    return hiddenOutput.equals(PooledGraph.OUTPUT);
  }

  private static long dimension(Session session, String output) {
    TensorInfo info =
        session.outputs().stream().filter(o -> o.name().equals(output)).findFirst().orElseThrow();
    return info.dims()[info.rank() - 1];
  }

  public Session session() {
    return session;
  }

  public Pooling pooling() {
    return pooling;
  }

  public boolean normalizes() {
    return normalize;
  }

  /** The text put before every input ("" for none). */
  public String prompt() {
    return prompt;
  }

  /** How many inputs so far were longer than the model's maximum and were truncated. */
  public long truncatedInputs() {
    return truncated.get();
  }

  /** Model inputs (batch 1) for one text, as the tokenizer encodes it (with the prompt). */
  public Map<String, Tensor> encode(String text) {
    if (text == null) {
      throw new InvalidInputException("text must not be null");
    }
    Encoding e = tokenizer.encode(prompt + text);
    return inputs(List.of(e), 0, 1, e.getIds().length);
  }

  /**
   * One embedding per text, in order; texts are run in batches of similar token length. Texts are
   * tokenized a chunk at a time, character length ordering the chunks and token length the runs
   * within one; where the model runs off the host, on the tokenizer threads ahead of the runs.
   */
  public float[][] embed(List<String> texts) {
    if (texts.isEmpty()) {
      throw new InvalidInputException("no texts to embed");
    }
    List<String> prompted = new ArrayList<>(texts.size());
    for (int i = 0; i < texts.size(); i++) {
      if (texts.get(i) == null) {
        throw new InvalidInputException("text " + i + " is null");
      }
      prompted.add(prompt + texts.get(i));
    }
    Integer[] order = orderBy(prompted.size(), i -> prompted.get(i).length());
    // Ahead only where the model runs off the host: on the CPU the tokenizer would take cores
    // from the model's own threads, so there all texts are one chunk, tokenized first.
    boolean ahead = session.computesOffHost();
    int chunkSize = ahead ? Math.max(MIN_CHUNK_TEXTS, batchSize * RUNS_PER_CHUNK) : prompted.size();
    List<List<String>> parts = new ArrayList<>();
    for (int from = 0; from < order.length; from += chunkSize) {
      List<String> part = new ArrayList<>();
      for (int k = from; k < Math.min(order.length, from + chunkSize); k++) {
        part.add(prompted.get(order[k]));
      }
      parts.add(part);
    }
    List<Future<Encoding[]>> chunks = new ArrayList<>();
    if (ahead) {
      for (List<String> part : parts) {
        chunks.add(TOKENIZER_THREADS.submit(() -> tokenizer.batchEncode(part)));
      }
    }
    float[][] out = new float[texts.size()][];
    try {
      for (int c = 0; c < parts.size(); c++) {
        Encoding[] encodings =
            chunks.isEmpty() ? tokenizer.batchEncode(parts.get(c)) : tokenized(chunks.get(c));
        int base = c * chunkSize;
        runChunk(encodings, k -> order[base + k], out);
      }
    } finally {
      chunks.forEach(chunk -> chunk.cancel(false));
    }
    return out;
  }

  /**
   * Runs one chunk's encodings in batches of similar token length (sorting keeps padding small) and
   * puts each vector at {@code out[position(k)]} for the chunk's k-th encoding.
   */
  private void runChunk(Encoding[] encodings, IntUnaryOperator position, float[][] out) {
    for (Encoding e : encodings) {
      check(e);
    }
    Integer[] byLength = orderBy(encodings.length, i -> encodings[i].getIds().length);
    List<Encoding> sorted = new ArrayList<>(byLength.length);
    for (Integer i : byLength) {
      sorted.add(encodings[i]);
    }
    int start = 0;
    while (start < sorted.size()) {
      int end = start + 1;
      while (end < sorted.size()
          && end - start < batchSize
          && (long) (end - start + 1) * sorted.get(end).getIds().length
              <= EmbeddingOptions.TOKENS_PER_RUN) {
        end++;
      }
      float[][] rows = run(sorted, start, end);
      for (int k = start; k < end; k++) {
        out[position.applyAsInt(byLength[k])] = rows[k - start];
      }
      start = end;
    }
  }

  /** The indices 0 to n - 1 ordered by {@code key}, ties in index order. */
  private static Integer[] orderBy(int n, IntUnaryOperator key) {
    Integer[] order = new Integer[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingInt(key::applyAsInt));
    return order;
  }

  /** Counts a truncated input; fails on one with nothing to pool. */
  private void check(Encoding e) {
    if (e.exceedMaxLength()) {
      truncated.incrementAndGet();
    }
    if (e.getIds().length <= unpooledPrefix) {
      throw new InvalidInputException(
          "a text encoded to no tokens"
              + (unpooledPrefix > 0 ? " after the prompt" : "")
              + "; there is nothing to embed");
    }
  }

  private static Encoding[] tokenized(Future<Encoding[]> chunk) {
    try {
      return chunk.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      throw new ModelException("tokenizing failed: " + e.getCause(), e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted while tokenizing");
    }
  }

  /** Runs encodings [from, to) as one batch padded to the longest, and pools each row. */
  private float[][] run(List<Encoding> encodings, int from, int to) {
    int sequence = 0;
    for (int k = from; k < to; k++) {
      sequence = Math.max(sequence, encodings.get(k).getIds().length);
    }
    Map<String, Tensor> in = inputs(encodings, from, to, sequence);
    try (Session.Result result = session.infer(in)) {
      Tensor hidden = result.get(hiddenOutput);
      if (pooledInGraph()) {
        return pooledRows(hidden, to - from);
      }
      long[] shape = hidden.shape();
      if (shape.length != 3 || shape[0] != to - from || shape[1] != sequence) {
        throw unexpectedOutput("[batch, sequence, hidden]", shape);
      }
      float[] states = hidden.toFloatArray();
      int dim = (int) shape[2];
      long[] mask = in.get("attention_mask").toLongArray();
      float[][] rows = new float[to - from][];
      for (int r = 0; r < rows.length; r++) {
        long[] rowMask = Arrays.copyOfRange(mask, r * sequence, (r + 1) * sequence);
        Arrays.fill(rowMask, 0, Math.min(unpooledPrefix, sequence), 0);
        rows[r] = finish(pooling.pool(states, r, sequence, dim, rowMask));
      }
      return rows;
    } finally {
      in.values().forEach(Tensor::close);
    }
  }

  /** The rows of the graph's own pooling ({@link PooledGraph}), finished. */
  private float[][] pooledRows(Tensor pooled, int expectedRows) {
    long[] shape = pooled.shape();
    if (shape.length != 2 || shape[0] != expectedRows) {
      throw unexpectedOutput("[batch, hidden]", shape);
    }
    float[] values = pooled.toFloatArray();
    int dim = (int) shape[1];
    float[][] rows = new float[expectedRows][];
    for (int r = 0; r < rows.length; r++) {
      rows[r] = finish(Arrays.copyOfRange(values, r * dim, (r + 1) * dim));
    }
    return rows;
  }

  private ModelException unexpectedOutput(String layout, long[] shape) {
    return new ModelException(
        "expected a " + layout + " output '" + hiddenOutput + "', got " + Arrays.toString(shape));
  }

  /** Matryoshka truncation, then unit length when the model normalizes. */
  private float[] finish(float[] pooled) {
    float[] v =
        dimensions > 0 && dimensions < pooled.length ? Arrays.copyOf(pooled, dimensions) : pooled;
    return normalize ? normalized(v) : v;
  }

  /** {@code v} scaled to unit length (a zero vector stays zero). */
  public static float[] normalized(float[] v) {
    double norm = 0;
    for (float x : v) {
      norm += (double) x * x;
    }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    float[] out = new float[v.length];
    for (int d = 0; d < v.length; d++) {
      out[d] = (float) (v[d] / norm);
    }
    return out;
  }

  /** Right-padded {@code [to - from, sequence]} inputs; padding has mask 0 and id 0. */
  private Map<String, Tensor> inputs(List<Encoding> encodings, int from, int to, int sequence) {
    int rows = to - from;
    long[] ids = new long[rows * sequence];
    long[] mask = new long[rows * sequence];
    long[] types = usesTokenTypes ? new long[rows * sequence] : null;
    for (int r = 0; r < rows; r++) {
      Encoding e = encodings.get(from + r);
      long[] rowIds = e.getIds();
      System.arraycopy(rowIds, 0, ids, r * sequence, rowIds.length);
      System.arraycopy(e.getAttentionMask(), 0, mask, r * sequence, rowIds.length);
      if (types != null) {
        System.arraycopy(e.getTypeIds(), 0, types, r * sequence, rowIds.length);
      }
    }
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("input_ids", Tensor.of(ids, rows, sequence));
    in.put("attention_mask", Tensor.of(mask, rows, sequence));
    if (types != null) {
      in.put("token_type_ids", Tensor.of(types, rows, sequence));
    }
    return in;
  }

  /** The embedding length: the model's hidden size, or the kept dimensions. */
  public long dimension() {
    long hidden = dimension(session, hiddenOutput);
    return dimensions > 0 ? dimensions : hidden;
  }

  @Override
  public void close() {
    tokenizer.close();
    session.close();
  }
}
