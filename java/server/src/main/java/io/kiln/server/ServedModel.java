package io.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.ModelException;
import io.kiln.embedding.TextEmbedder;
import io.kiln.execution.llm.KvPoolSpec;
import io.kiln.execution.llm.LlmEngine;
import io.kiln.execution.llm.LlmRunners;
import io.kiln.execution.llm.ModelRunner;
import io.kiln.execution.llm.SpeculativeConfig;
import io.kiln.session.Session;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * What one server serves: the runner (and a draft model's) and its engine, the tokenizer and chat
 * template, the end tokens, and the embedder. Closes them in reverse order of opening.
 */
final class ServedModel implements AutoCloseable {
  final String name;
  final ModelRunner runner;
  final ModelRunner draft; // null unless the engine speculates with a draft model
  final LlmEngine engine;
  final TextTokenizer tokenizer; // null when the model directory has none
  final ChatTemplate chatTemplate;
  final int[] eosIds;
  final int maxModelLen;
  final TextEmbedder embedder; // null with --embedding-model none
  final String embeddingModelName;

  private ServedModel(
      ServerOptions options,
      ModelRunner runner,
      ModelRunner draft,
      LlmEngine engine,
      TextTokenizer tokenizer,
      TextEmbedder embedder) {
    this.name = options.modelName();
    this.runner = runner;
    this.draft = draft;
    this.engine = engine;
    this.tokenizer = tokenizer;
    this.chatTemplate = ChatTemplate.load(options.model());
    this.eosIds = eosIds(options.model(), engine.spec().eosTokenId());
    KvPoolSpec pool = runner.kvPool();
    int engineLimit =
        (int)
            Math.min(
                engine.spec().maxPositions(), (long) (pool.numBlocks() - 1) * pool.blockSize());
    this.maxModelLen =
        options.maxModelLen() > 0 ? Math.min(options.maxModelLen(), engineLimit) : engineLimit;
    this.embedder = embedder;
    this.embeddingModelName = embeddingName(options.embeddingModel());
  }

  static ServedModel open(ServerOptions options) {
    if (!Files.isDirectory(options.model())) {
      throw new ModelException("model directory not found: " + options.model());
    }
    SpeculativeConfig speculative = options.speculative();
    // The target verifies K + 1 positions a step (a CUDA target captures graphs for that shape).
    ModelRunner runner =
        LlmRunners.open(
            options.model(), options.device(), options.runnerOptions().forTarget(speculative));
    ModelRunner draft = null;
    LlmEngine engine = null;
    TextTokenizer tokenizer = null;
    TextEmbedder embedder = null;
    try {
      if (options.draftModel() != null) {
        draft =
            LlmRunners.open(
                options.draftModel(), options.device(), options.runnerOptions().forDraft());
      }
      engine = new LlmEngine(runner, options.scheduler(), options.speculative(), draft);
      tokenizer = TextTokenizer.openOrNull(options.model());
      embedder = openEmbedder(options.embeddingModel());
      return new ServedModel(options, runner, draft, engine, tokenizer, embedder);
    } catch (RuntimeException e) {
      closeQuietly(embedder);
      closeQuietly(tokenizer);
      closeQuietly(engine);
      closeQuietly(draft);
      closeQuietly(runner);
      throw e;
    }
  }

  private static TextEmbedder openEmbedder(String spec) {
    if (spec == null || spec.equals("none")) {
      return null;
    }
    if (spec.equals("default") || spec.equals(ServerOptions.DEFAULT_EMBEDDING_MODEL)) {
      return TextEmbedder.defaultModel(UnaryOperator.identity());
    }
    Path onnx = Path.of(spec);
    if (!Files.isRegularFile(onnx)) {
      throw new ModelException("embedding model not found: " + onnx);
    }
    return TextEmbedder.open(Session.builder(onnx), onnx.resolveSibling("tokenizer.json"));
  }

  private static String embeddingName(String spec) {
    if (spec == null || spec.equals("none")) {
      return null;
    }
    if (spec.equals("default") || spec.equals(ServerOptions.DEFAULT_EMBEDDING_MODEL)) {
      return ServerOptions.DEFAULT_EMBEDDING_MODEL;
    }
    Path dir = Path.of(spec).toAbsolutePath().getParent();
    return dir == null || dir.getFileName() == null ? spec : dir.getFileName().toString();
  }

  /** The end tokens of generation_config.json (an id or a list), else config.json's. */
  private static int[] eosIds(Path modelDir, int specEos) {
    Set<Integer> ids = new LinkedHashSet<>();
    for (String file : new String[] {"generation_config.json", "config.json"}) {
      Path p = modelDir.resolve(file);
      if (ids.isEmpty() && Files.isRegularFile(p)) {
        try {
          JsonNode eos = new ObjectMapper().readTree(p.toFile()).get("eos_token_id");
          if (eos != null && eos.isIntegralNumber()) {
            ids.add(eos.asInt());
          } else if (eos != null && eos.isArray()) {
            eos.forEach(id -> ids.add(id.asInt()));
          }
        } catch (IOException e) {
          throw new ModelException("cannot read " + p + ": " + e.getMessage(), e);
        }
      }
    }
    if (specEos >= 0) {
      ids.add(specEos);
    }
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  TextTokenizer requireTokenizer(String param) {
    if (tokenizer == null) {
      throw ApiException.badRequest(
          "this model has no tokenizer.json; send the prompt as token ids", param);
    }
    return tokenizer;
  }

  @Override
  public void close() {
    closeQuietly(embedder);
    closeQuietly(tokenizer);
    closeQuietly(engine);
    closeQuietly(draft);
    closeQuietly(runner);
  }

  private static void closeQuietly(AutoCloseable c) {
    if (c == null) {
      return;
    }
    try {
      c.close();
    } catch (Exception e) {
      org.slf4j.LoggerFactory.getLogger(ServedModel.class).warn("close failed: {}", e.toString());
    }
  }
}
