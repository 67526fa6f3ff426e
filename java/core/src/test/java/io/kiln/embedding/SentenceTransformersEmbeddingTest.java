package io.kiln.embedding;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.langchain4j.model.embedding.EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.allminilml6v2.AllMiniLmL6V2EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.bgesmallenv15.BgeSmallEnV15EmbeddingModel;
import dev.langchain4j.model.embedding.onnx.e5smallv2q.E5SmallV2QuantizedEmbeddingModel;
import io.kiln.Device;
import io.kiln.Vectors;
import io.kiln.model.onnx.Node;
import io.kiln.model.onnx.OnnxModel;
import io.kiln.util.HfTokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Three real sentence-transformers encoders laid out as model directories (mean pooling, CLS
 * pooling, a quantized model): Kiln's embeddings equal those of langchain4j's own classes.
 */
class SentenceTransformersEmbeddingTest {
  /** Each word of these is one BERT word piece, so N words are exactly N tokens. */
  private static final String[] ONE_TOKEN_WORDS =
      "the river runs past old stone walls and green fields under a wide blue sky where birds sing all day long"
          .split(" ");

  static final String LONG_600 = words(600, 0);
  static final String LONG_1500 = words(1500, 7);

  enum Model {
    MINILM(
        "/all-minilm-l6-v2.onnx",
        "/all-minilm-l6-v2-tokenizer.json",
        true,
        "pooling_mode_mean_tokens",
        128,
        AllMiniLmL6V2EmbeddingModel::new),
    BGE_SMALL(
        "/bge-small-en-v1.5.onnx",
        "/bge-small-en-v1.5-tokenizer.json",
        false,
        "pooling_mode_cls_token",
        512,
        BgeSmallEnV15EmbeddingModel::new),
    E5_SMALL_QUANTIZED(
        "/e5-small-v2-q.onnx",
        "/e5-small-v2-q-tokenizer.json",
        true,
        "pooling_mode_mean_tokens",
        512,
        E5SmallV2QuantizedEmbeddingModel::new);

    final String onnx;
    final String tokenizer;
    final boolean onnxSubdir;
    final String poolingFlag;

    /** From the model's files: MiniLM's tokenizer.json truncates at 128, the others at 512. */
    final int maxTokens;

    final Supplier<EmbeddingModel> reference;

    Model(
        String onnx,
        String tokenizer,
        boolean onnxSubdir,
        String poolingFlag,
        int maxTokens,
        Supplier<EmbeddingModel> reference) {
      this.maxTokens = maxTokens;
      this.onnx = onnx;
      this.tokenizer = tokenizer;
      this.onnxSubdir = onnxSubdir;
      this.poolingFlag = poolingFlag;
      this.reference = reference;
    }

    boolean cls() {
      return poolingFlag.equals("pooling_mode_cls_token");
    }
  }

  @TempDir static Path root;
  private static final Map<Model, Path> DIRS = new HashMap<>();

  @BeforeAll
  static void layOut() throws Exception {
    for (Model m : Model.values()) {
      Path dir =
          SentenceTransformersLayout.write(
              root.resolve(m.name()), m.onnx, m.tokenizer, m.onnxSubdir, m.poolingFlag, true);
      if (m == Model.E5_SMALL_QUANTIZED) {
        Files.writeString(
            dir.resolve("config_sentence_transformers.json"),
            "{\"prompts\": {\"query\": \"query: \", \"passage\": \"passage: \"},"
                + " \"default_prompt_name\": null}");
      }
      DIRS.put(m, dir);
    }
  }

  static List<String> sentences() {
    List<String> s = new ArrayList<>(MiniLmEmbeddingTest.SENTENCES);
    s.addAll(
        List.of(
            "北京是中华人民共和国的首都。",
            "東京は日本の首都です。桜が美しい。",
            "서울은 대한민국의 수도입니다.",
            "Москва — столица России.",
            "القاهرة هي عاصمة مصر.",
            "नई दिल्ली भारत की राजधानी है।",
            "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
            "Tôi yêu tiếng Việt.",
            "שלום עולם",
            "Ünïcödé äccents: naïve café, façade, jalapeño.",
            "1234567890 3.14159 2,718 -42 +7e10",
            "https://example.com/path?query=1&x=y#frag",
            "!!!???...,,,;;;:::",
            "a b c d e f g h i j k l m n o p",
            "It was the best of times, it was the worst of times, it was the age of wisdom, it"
                + " was the age of foolishness, it was the epoch of belief, it was the epoch of"
                + " incredulity, it was the season of Light, it was the season of Darkness.",
            "Photosynthesis converts light energy into chemical energy. ".repeat(16),
            "SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1;",
            "The patient presented with acute dyspnea and bilateral crackles on auscultation.",
            "Mixed: English, español, Deutsch, 中文, русский, العربية in one line.",
            "UPPER CASE SHOUTING TEXT IS STILL TEXT",
            "tabs\tand\nnewlines\r\ninside",
            "x",
            "The end.",
            "Machine translation has improved greatly with attention-based neural networks,"
                + " yet idioms, humour and rare languages remain hard for them.",
            "¡Hola! ¿Qué tal? Très bien, merci. Danke schön.",
            LONG_600,
            LONG_1500,
            "",
            "   \t\n  "));
    return s;
  }

  @ParameterizedTest
  @EnumSource(Model.class)
  void directoryEmbeddingsMatchLangchain4j(Model model) throws Exception {
    List<String> texts = sentences();
    assertTrue(texts.size() >= 50, "at least 50 sentences, got " + texts.size());
    EmbeddingModel reference = model.reference.get();
    try (TextEmbedder kiln =
        TextEmbedder.open(
            DIRS.get(model), EmbeddingOptions.defaults(), b -> b.device(Device.CPU))) {
      assertEquals(model.cls() ? Pooling.CLS : Pooling.MEAN, kiln.pooling());
      assertTrue(kiln.normalizes());
      float[][] mine = kiln.embed(texts);
      assertEquals(model.maxTokens, ModelDirectory.open(DIRS.get(model)).maxTokens());
      assertEquals(
          model == Model.MINILM ? 3 : 2,
          kiln.truncatedInputs(),
          "the texts past the maximum are truncated and counted");
      double worst = 1;
      for (int i = 0; i < texts.size(); i++) {
        float[] theirs = referenceEmbedding(model, reference, texts.get(i));
        double cos = Vectors.cosine(mine[i], theirs);
        worst = Math.min(worst, cos);
        assertTrue(cos >= 0.9999, model + " text " + i + " cosine " + cos);
        assertEquals(1.0, norm(mine[i]), 1e-5);
      }
      System.out.println(model + ": worst cosine to langchain4j " + worst);
    }
  }

  /**
   * langchain4j refuses blank text and averages the parts of a text past 510 tokens, where Kiln
   * truncates: blank text is checked against the model run by hand on ONNX Runtime's Java API, and
   * a long text against langchain4j on the part that fits.
   */
  private static float[] referenceEmbedding(Model model, EmbeddingModel reference, String text)
      throws Exception {
    if (text.isBlank()) {
      return byHand(model, text);
    }
    int fits = model.maxTokens - 2;
    String fitting = text == LONG_600 ? words(fits, 0) : text == LONG_1500 ? words(fits, 7) : text;
    return reference.embed(fitting).content().vector();
  }

  @Test
  void longTextPrefixIsExactlyTheTruncatedTokens() {
    try (HuggingFaceTokenizer t =
        TextEmbedder.loadTokenizer(DIRS.get(Model.MINILM).resolve("tokenizer.json"), 512)) {
      for (int offset : new int[] {0, 7}) {
        assertEquals(512, t.encode(words(510, offset)).getIds().length);
        assertEquals(128, t.encode(words(126, offset)).getIds().length);
        assertTrue(t.encode(words(1500, offset)).exceedMaxLength());
        assertFalse(t.encode(words(510, offset)).exceedMaxLength());
      }
    }
  }

  /** The model run on ONNX Runtime's own Java API, pooled and normalized here. */
  private static float[] byHand(Model model, String text) throws Exception {
    Path dir = DIRS.get(model);
    Path onnx = ModelDirectory.onnxFile(dir);
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    try (HuggingFaceTokenizer tok = HfTokenizers.open(dir.resolve("tokenizer.json"));
        OrtSession session = env.createSession(onnx.toString())) {
      Encoding e = tok.encode(text);
      Map<String, OnnxTensor> in = new HashMap<>();
      in.put("input_ids", OnnxTensor.createTensor(env, new long[][] {e.getIds()}));
      in.put("attention_mask", OnnxTensor.createTensor(env, new long[][] {e.getAttentionMask()}));
      if (session.getInputNames().contains("token_type_ids")) {
        in.put("token_type_ids", OnnxTensor.createTensor(env, new long[][] {e.getTypeIds()}));
      }
      try (OrtSession.Result r = session.run(in)) {
        float[][] states = ((float[][][]) r.get(0).getValue())[0];
        float[] pooled = new float[states[0].length];
        for (int d = 0; d < pooled.length; d++) {
          if (model.cls()) {
            pooled[d] = states[0][d];
          } else {
            for (float[] token : states) {
              pooled[d] += token[d] / states.length;
            }
          }
        }
        return TextEmbedder.normalized(pooled);
      } finally {
        in.values().forEach(OnnxTensor::close);
      }
    }
  }

  @Test
  void namedPromptAndDimensionsMatchHandComputedReferences() {
    Path dir = DIRS.get(Model.E5_SMALL_QUANTIZED);
    List<String> texts = List.of("how do kilns work", "capital of France");
    try (TextEmbedder plain =
            TextEmbedder.open(dir, EmbeddingOptions.defaults(), b -> b.device(Device.CPU));
        TextEmbedder query =
            TextEmbedder.open(
                dir,
                EmbeddingOptions.defaults().withPromptName("query"),
                b -> b.device(Device.CPU));
        TextEmbedder literal =
            TextEmbedder.open(
                dir,
                EmbeddingOptions.defaults().withPrompt("passage: "),
                b -> b.device(Device.CPU));
        TextEmbedder short128 =
            TextEmbedder.open(
                dir, EmbeddingOptions.defaults().withDimensions(128), b -> b.device(Device.CPU))) {
      assertEquals("query: ", query.prompt());
      float[][] full = plain.embed(List.of("query: " + texts.get(0), "query: " + texts.get(1)));
      float[][] prompted = query.embed(texts);
      float[][] passages = literal.embed(texts);
      float[][] fullPassages =
          plain.embed(List.of("passage: " + texts.get(0), "passage: " + texts.get(1)));
      float[][] plainFull = plain.embed(texts);
      float[][] truncated = short128.embed(texts);
      assertEquals(128, short128.dimension());
      for (int i = 0; i < texts.size(); i++) {
        assertTrue(Vectors.cosine(full[i], prompted[i]) >= 0.9999);
        assertTrue(Vectors.cosine(fullPassages[i], passages[i]) >= 0.9999);
        // The prompt must change the embedding, or this test could not fail.
        assertTrue(Vectors.cosine(plainFull[i], prompted[i]) < 0.999);
        float[] byHand = TextEmbedder.normalized(java.util.Arrays.copyOf(plainFull[i], 128));
        assertEquals(128, truncated[i].length);
        assertEquals(1.0, norm(truncated[i]), 1e-5);
        assertTrue(Vectors.cosine(byHand, truncated[i]) >= 0.99999);
      }
    }
  }

  @Test
  void unknownPoolingNamesTheOptionAndGivenPoolingOverrides() {
    Path bare =
        SentenceTransformersLayout.write(
            root.resolve("bare"), Model.MINILM.onnx, Model.MINILM.tokenizer, false, null, false);
    MissingEmbeddingSettingException e =
        assertThrows(MissingEmbeddingSettingException.class, () -> TextEmbedder.open(bare));
    assertEquals("--pooling", e.option());
    assertTrue(e.getMessage().contains("--pooling"), e.getMessage());
    MissingEmbeddingSettingException n =
        assertThrows(
            MissingEmbeddingSettingException.class,
            () ->
                TextEmbedder.open(
                    bare, EmbeddingOptions.defaults().withPooling(Pooling.MEAN), b -> b));
    assertEquals("--normalize", n.option());
    // CLS given on a mean-pooled model: a different, unnormalized vector, as asked.
    try (TextEmbedder cls =
            TextEmbedder.open(
                bare,
                EmbeddingOptions.defaults().withPooling(Pooling.CLS).withNormalize(false),
                b -> b.device(Device.CPU));
        TextEmbedder mean =
            TextEmbedder.open(
                DIRS.get(Model.MINILM), EmbeddingOptions.defaults(), b -> b.device(Device.CPU))) {
      float[] c = cls.embed(List.of("The kiln fires clay.")).clone()[0];
      float[] m = mean.embed(List.of("The kiln fires clay."))[0];
      assertTrue(Math.abs(norm(c) - 1) > 0.01, "not normalized: " + norm(c));
      assertTrue(Vectors.cosine(c, m) < 0.99);
    }
  }

  @Test
  void excludedPromptIsNotPooled() throws Exception {
    Path dir =
        SentenceTransformersLayout.write(
            root.resolve("e5-prompt-excluded"),
            Model.E5_SMALL_QUANTIZED.onnx,
            Model.E5_SMALL_QUANTIZED.tokenizer,
            false,
            "pooling_mode_mean_tokens",
            true);
    Files.writeString(
        dir.resolve("1_Pooling").resolve("config.json"),
        "{\"pooling_mode_mean_tokens\": true, \"include_prompt\": false}");
    String text = "how do kilns work";
    try (TextEmbedder excluded =
            TextEmbedder.open(
                dir, EmbeddingOptions.defaults().withPrompt("query: "), b -> b.device(Device.CPU));
        TextEmbedder included =
            TextEmbedder.open(
                DIRS.get(Model.E5_SMALL_QUANTIZED),
                EmbeddingOptions.defaults().withPrompt("query: "),
                b -> b.device(Device.CPU))) {
      float[] mine = excluded.embed(List.of(text))[0];
      // By hand: run "query: how do kilns work" through the model's own graph (the embedder's
      // session pools inside its graph) and average all but [CLS] query : (3 tokens).
      Map<String, io.kiln.Tensor> in = excluded.encode(text);
      try (io.kiln.session.Session plain =
              io.kiln.session.Session.builder(dir.resolve("model.onnx"))
                  .device(Device.CPU)
                  .build();
          io.kiln.session.Session.Result r = plain.infer(in)) {
        float[] states = r.get("last_hidden_state").toFloatArray();
        int sequence = (int) in.get("input_ids").dim(1);
        int dim = states.length / sequence;
        float[] mean = new float[dim];
        for (int s = 3; s < sequence; s++) {
          for (int d = 0; d < dim; d++) {
            mean[d] += states[s * dim + d] / (sequence - 3);
          }
        }
        double cos = Vectors.cosine(TextEmbedder.normalized(mean), mine);
        assertTrue(cos >= 0.99999, "cosine " + cos);
      } finally {
        in.values().forEach(io.kiln.Tensor::close);
      }
      float[] withPrompt = included.embed(List.of(text))[0];
      assertTrue(Vectors.cosine(withPrompt, mine) < 0.9999);
    }
  }

  /**
   * The graph pools by default; where a backend cannot build that graph the embedder opens the
   * model as it is and pools on the host, with the same vectors.
   */
  @Test
  void aBackendThatCannotBuildThePooledGraphPoolsOnTheHost() {
    List<String> texts = List.of("a kiln fires clay", "glaze melts at high heat", "");
    java.util.concurrent.atomic.AtomicInteger builds =
        new java.util.concurrent.atomic.AtomicInteger();
    try (TextEmbedder pooled =
            TextEmbedder.open(
                DIRS.get(Model.MINILM), EmbeddingOptions.defaults(), b -> b.device(Device.CPU));
        TextEmbedder host =
            TextEmbedder.open(
                DIRS.get(Model.MINILM),
                EmbeddingOptions.defaults(),
                b -> {
                  if (builds.getAndIncrement() == 0) {
                    throw new io.kiln.BackendException("this backend cannot build the graph");
                  }
                  return b.device(Device.CPU);
                })) {
      assertEquals(2, builds.get());
      assertTrue(
          pooled.session().outputs().stream().anyMatch(o -> o.name().equals(PooledGraph.OUTPUT)));
      assertTrue(
          host.session().outputs().stream().noneMatch(o -> o.name().equals(PooledGraph.OUTPUT)));
      float[][] a = pooled.embed(texts);
      float[][] b = host.embed(texts);
      for (int i = 0; i < texts.size(); i++) {
        assertTrue(Vectors.cosine(a[i], b[i]) >= 0.99999, "text " + i);
      }
    }
  }

  @Test
  void modelWithoutTokenTypeIdsEmbedsTheSame() throws Exception {
    Path dir =
        SentenceTransformersLayout.write(
            root.resolve("no-token-types"),
            Model.MINILM.onnx,
            Model.MINILM.tokenizer,
            false,
            "pooling_mode_mean_tokens",
            true);
    // The same graph with token_type_ids made inside it (zeros shaped like input_ids), so that
    // it is no longer an input.
    Path onnx = dir.resolve("model.onnx");
    OnnxModel model = OnnxModel.load(onnx);
    List<Node> nodes = new ArrayList<>();
    nodes.add(Node.create("Shape", "types_shape", List.of("input_ids"), List.of("types_shape")));
    nodes.add(
        Node.create(
            "ConstantOfShape", "types_zeros", List.of("types_shape"), List.of("types_zeros")));
    nodes.add(
        Node.create("Cast", "types_cast", List.of("types_zeros"), List.of("token_type_ids"))
            .setIntAttribute("to", 7));
    nodes.addAll(model.nodes());
    model.setNodes(nodes);
    int graphInputField = 11; // GraphProto.input
    model
        .graph()
        .removeMessages(graphInputField, vi -> OnnxModel.name(vi).equals("token_type_ids"));
    model.save(onnx);
    List<String> texts = List.of("The kiln fires clay.", "", "Deux phrases. Zwei Sätze.");
    try (TextEmbedder without =
            TextEmbedder.open(dir, EmbeddingOptions.defaults(), b -> b.device(Device.CPU));
        TextEmbedder with =
            TextEmbedder.open(
                DIRS.get(Model.MINILM), EmbeddingOptions.defaults(), b -> b.device(Device.CPU))) {
      assertTrue(
          without.session().inputs().stream().noneMatch(i -> i.name().equals("token_type_ids")));
      assertTrue(with.session().inputs().stream().anyMatch(i -> i.name().equals("token_type_ids")));
      float[][] a = without.embed(texts);
      float[][] b = with.embed(texts);
      for (int i = 0; i < texts.size(); i++) {
        assertTrue(Vectors.cosine(a[i], b[i]) >= 0.9999, "text " + i);
      }
    }
  }

  static String words(int count, int offset) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < count; i++) {
      sb.append(i == 0 ? "" : " ").append(ONE_TOKEN_WORDS[(i + offset) % ONE_TOKEN_WORDS.length]);
    }
    return sb.toString();
  }

  static double norm(float[] v) {
    double n = 0;
    for (float x : v) {
      n += (double) x * x;
    }
    return Math.sqrt(n);
  }
}
