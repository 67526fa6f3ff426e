package io.kiln.embedding;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kiln.ModelException;
import io.kiln.model.JsonProblems;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a sentence-transformers model directory says about embedding: the pooling of its Pooling
 * module, whether a Normalize module follows, its named prompts and its longest input. A value the
 * files do not give is null, so that callers can tell "not said" from a default.
 *
 * @param pooling from the Pooling module's config.json, or null
 * @param normalize whether modules.json lists a Normalize module; null without modules.json
 * @param prompts named prompts of config_sentence_transformers.json (e.g. query to "query: ")
 * @param defaultPromptName the prompt to use when none is asked for, or null
 * @param maxSeqLength sentence_bert_config.json's max_seq_length, or null
 * @param includePrompt whether the prompt's tokens are pooled (the Pooling config's include_prompt;
 *     true when not said)
 */
public record SentenceTransformersConfig(
    Pooling pooling,
    Boolean normalize,
    Map<String, String> prompts,
    String defaultPromptName,
    Integer maxSeqLength,
    boolean includePrompt) {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String POOLING_TYPE = "sentence_transformers.models.Pooling";
  private static final String NORMALIZE_TYPE = "sentence_transformers.models.Normalize";

  public SentenceTransformersConfig {
    prompts = Map.copyOf(prompts);
  }

  /** Nothing said: no pooling, no normalization choice, no prompts. */
  public static SentenceTransformersConfig none() {
    return new SentenceTransformersConfig(null, null, Map.of(), null, null, true);
  }

  /** Reads the sentence-transformers files of {@code dir}; missing files leave values null. */
  public static SentenceTransformersConfig read(Path dir) {
    Path modulesFile = dir.resolve("modules.json");
    Boolean normalize = null;
    Path poolingConfig = dir.resolve("1_Pooling").resolve("config.json");
    if (Files.isRegularFile(modulesFile)) {
      JsonNode modules = readJson(modulesFile);
      if (!modules.isArray()) {
        throw new ModelException(modulesFile + ": expected a JSON array of modules");
      }
      normalize = false;
      for (JsonNode module : modules) {
        String type = module.path("type").asText("");
        if (type.equals(NORMALIZE_TYPE)) {
          normalize = true;
        } else if (type.equals(POOLING_TYPE)) {
          poolingConfig = dir.resolve(module.path("path").asText("")).resolve("config.json");
        }
      }
    }
    Pooling pooling = Files.isRegularFile(poolingConfig) ? poolingOf(poolingConfig) : null;
    boolean includePrompt =
        !Files.isRegularFile(poolingConfig)
            || readJson(poolingConfig).path("include_prompt").asBoolean(true);
    Map<String, String> prompts = new LinkedHashMap<>();
    String defaultPrompt = null;
    Path stConfig = dir.resolve("config_sentence_transformers.json");
    if (Files.isRegularFile(stConfig)) {
      JsonNode root = readJson(stConfig);
      root.path("prompts")
          .fields()
          .forEachRemaining(e -> prompts.put(e.getKey(), e.getValue().asText()));
      JsonNode name = root.path("default_prompt_name");
      defaultPrompt = name.isTextual() ? name.asText() : null;
    }
    Integer maxSeq = null;
    Path bertConfig = dir.resolve("sentence_bert_config.json");
    if (Files.isRegularFile(bertConfig)) {
      JsonNode max = readJson(bertConfig).path("max_seq_length");
      maxSeq = max.canConvertToInt() && max.asInt() > 0 ? max.asInt() : null;
    }
    return new SentenceTransformersConfig(
        pooling, normalize, prompts, defaultPrompt, maxSeq, includePrompt);
  }

  /** The one pooling mode a Pooling config.json turns on. */
  static Pooling poolingOf(Path config) {
    JsonNode root = readJson(config);
    if (root.path("pooling_mode").isTextual()) {
      return Pooling.fromName(
          root.path("pooling_mode").asText().replace("lasttoken", "last-token"));
    }
    Map<String, Pooling> flags = new LinkedHashMap<>();
    flags.put("pooling_mode_cls_token", Pooling.CLS);
    flags.put("pooling_mode_mean_tokens", Pooling.MEAN);
    flags.put("pooling_mode_max_tokens", Pooling.MAX);
    flags.put("pooling_mode_mean_sqrt_len_tokens", Pooling.MEAN_SQRT_LEN);
    flags.put("pooling_mode_lasttoken", Pooling.LAST_TOKEN);
    List<Pooling> on = new ArrayList<>();
    flags.forEach(
        (key, mode) -> {
          if (root.path(key).asBoolean(false)) {
            on.add(mode);
          }
        });
    if (root.path("pooling_mode_weightedmean_tokens").asBoolean(false)) {
      throw new ModelException(config + ": weighted-mean pooling is not supported");
    }
    if (on.size() > 1) {
      throw new ModelException(
          config + ": several pooling modes at once (concatenated) are not supported: " + on);
    }
    if (on.isEmpty()) {
      throw new ModelException(config + ": no pooling mode is turned on");
    }
    return on.get(0);
  }

  static JsonNode readJson(Path file) {
    try {
      return JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new ModelException("cannot read " + file + ": " + JsonProblems.oneLine(e), e);
    }
  }
}
