package io.kiln.bench;

import io.kiln.DType;
import io.kiln.model.llama.RandomLlamaModel;
import java.nio.file.Path;

/**
 * The speculation benches' test models: a seeded tiny random Llama whose layers after the first add
 * almost nothing (the target) and its first layer alone (the draft), from {@link
 * ShallowDraftModels}.
 */
public record TinyShallowPair(Path target, Path draft) {
  /** Writes the pair under {@code dir}. */
  public static TinyShallowPair write(Path dir) {
    Path base = dir.resolve("base");
    RandomLlamaModel.write(
        RandomLlamaModel.shape("tiny"), 5, DType.F32, base, 1L << 30, fraction -> {});
    TinyShallowPair pair = new TinyShallowPair(dir.resolve("target"), dir.resolve("draft"));
    ShallowDraftModels.write(base, pair.target(), pair.draft(), 1, 1e-3);
    return pair;
  }
}
