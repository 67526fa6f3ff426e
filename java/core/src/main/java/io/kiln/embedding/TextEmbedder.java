package io.kiln.embedding;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.kiln.InvalidInputException;
import io.kiln.ModelException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.session.Session;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Sentence embeddings from a BERT-style encoder: tokenize, run, mean-pool the last hidden state
 * over the attention mask, then L2-normalize.
 */
public final class TextEmbedder implements AutoCloseable {
  /** The longest input the default model accepts, in tokens. */
  public static final int DEFAULT_MAX_TOKENS = 512;

  private final Session session;
  private final HuggingFaceTokenizer tokenizer;
  private final boolean usesTokenTypes;

  public TextEmbedder(Session session, HuggingFaceTokenizer tokenizer) {
    this.session = session;
    this.tokenizer = tokenizer;
    this.usesTokenTypes =
        session.inputs().stream().anyMatch(i -> i.name().equals("token_type_ids"));
    for (String required : List.of("input_ids", "attention_mask")) {
      if (session.inputs().stream().noneMatch(i -> i.name().equals(required))) {
        throw new ModelException("an embedding model needs an input named '" + required + "'");
      }
    }
  }

  /** The embedded all-MiniLM-L6-v2 on the given session options. */
  public static TextEmbedder defaultModel(java.util.function.UnaryOperator<Session.Builder> tune) {
    return new TextEmbedder(
        tune.apply(Session.builderFromResource(DefaultEmbeddingModel.get().modelResource()))
            .build(),
        loadTokenizerResource(DefaultEmbeddingModel.get().tokenizerResource()));
  }

  /** A model of one's own: {@code session} built from its ONNX file, with its tokenizer.json. */
  public static TextEmbedder open(Session.Builder session, Path tokenizerJson) {
    HuggingFaceTokenizer tokenizer = loadTokenizer(tokenizerJson);
    try {
      return new TextEmbedder(session.build(), tokenizer);
    } catch (RuntimeException e) {
      tokenizer.close();
      throw e;
    }
  }

  public static HuggingFaceTokenizer loadTokenizer(Path tokenizerJson) {
    if (!Files.isRegularFile(tokenizerJson)) {
      throw new ModelException("tokenizer file not found: " + tokenizerJson);
    }
    try {
      return HuggingFaceTokenizer.newInstance(tokenizerJson, tokenizerOptions());
    } catch (IOException | RuntimeException e) {
      throw new ModelException("cannot load tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
    }
  }

  public static HuggingFaceTokenizer loadTokenizerResource(String resource) {
    String r = resource.startsWith("/") ? resource.substring(1) : resource;
    try (InputStream in = TextEmbedder.class.getClassLoader().getResourceAsStream(r)) {
      if (in == null) {
        throw new ModelException("tokenizer resource not found on the classpath: " + resource);
      }
      return HuggingFaceTokenizer.newInstance(in, tokenizerOptions());
    } catch (IOException e) {
      throw new ModelException("cannot load tokenizer " + resource + ": " + e.getMessage(), e);
    }
  }

  private static Map<String, String> tokenizerOptions() {
    return Map.of(
        "padding", "false",
        "truncation", "true",
        "maxLength", Integer.toString(DEFAULT_MAX_TOKENS));
  }

  public Session session() {
    return session;
  }

  /** Model inputs (batch 1) for one text, as the tokenizer encodes it. */
  public Map<String, Tensor> encode(String text) {
    if (text == null) {
      throw new InvalidInputException("text must not be null");
    }
    Encoding e = tokenizer.encode(text);
    long[] ids = e.getIds();
    Map<String, Tensor> in = new LinkedHashMap<>();
    in.put("input_ids", Tensor.of(ids, 1, ids.length));
    in.put("attention_mask", Tensor.of(e.getAttentionMask(), 1, ids.length));
    if (usesTokenTypes) {
      in.put("token_type_ids", Tensor.of(e.getTypeIds(), 1, ids.length));
    }
    return in;
  }

  /** One unit-length embedding per text, in order. */
  public float[][] embed(List<String> texts) {
    if (texts.isEmpty()) {
      throw new InvalidInputException("no texts to embed");
    }
    List<Map<String, Tensor>> requests = new ArrayList<>();
    try {
      for (String t : texts) {
        requests.add(encode(t));
      }
      List<Session.Result> results = session.inferBatch(requests);
      float[][] out = new float[texts.size()][];
      for (int i = 0; i < out.length; i++) {
        try (Session.Result r = results.get(i)) {
          out[i] = meanPoolNormalized(r.first(), requests.get(i).get("attention_mask"));
        }
      }
      return out;
    } finally {
      requests.forEach(m -> m.values().forEach(Tensor::close));
    }
  }

  /** Mean of the hidden states of row 0 where the mask is 1, scaled to unit length. */
  static float[] meanPoolNormalized(Tensor hidden, Tensor mask) {
    long[] shape = hidden.shape();
    if (shape.length != 3) {
      throw new ModelException(
          "expected a [batch, sequence, hidden] output, got rank " + shape.length);
    }
    int seq = (int) shape[1];
    int dim = (int) shape[2];
    float[] h = hidden.toFloatArray();
    long[] m = mask.toLongArray();
    double[] sum = new double[dim];
    int count = 0;
    for (int s = 0; s < seq; s++) {
      if (m[s] != 0) {
        count++;
        for (int d = 0; d < dim; d++) {
          sum[d] += h[s * dim + d];
        }
      }
    }
    double norm = 0;
    for (int d = 0; d < dim; d++) {
      sum[d] /= Math.max(count, 1);
      norm += sum[d] * sum[d];
    }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    float[] out = new float[dim];
    for (int d = 0; d < dim; d++) {
      out[d] = (float) (sum[d] / norm);
    }
    return out;
  }

  /** The model's hidden size (the embedding length). */
  public long dimension() {
    TensorInfo out = session.outputs().get(0);
    return out.dims()[out.rank() - 1];
  }

  @Override
  public void close() {
    tokenizer.close();
    session.close();
  }
}
