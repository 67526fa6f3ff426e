package io.kiln.model.llama;

import io.kiln.ModelException;
import io.kiln.model.llama.ModelFamily.SlidingWindow;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The Llama-family architectures Kiln runs, keyed by config.json's {@code architectures} and {@code
 * model_type}. Adding a family is one entry in {@link #ALL}.
 */
public final class ModelFamilies {
  public static final ModelFamily LLAMA =
      new ModelFamily(
          "LlamaForCausalLM", "llama", false, true, true, SlidingWindow.WHEN_SET, false);
  public static final ModelFamily MISTRAL =
      new ModelFamily(
          "MistralForCausalLM", "mistral", false, true, true, SlidingWindow.WHEN_SET, false);
  // Qwen2 always has q/k/v biases, never an o_proj bias, and ignores attention_bias.
  public static final ModelFamily QWEN2 =
      new ModelFamily(
          "Qwen2ForCausalLM", "qwen2", true, false, true, SlidingWindow.WHEN_ENABLED, false);

  private static final List<ModelFamily> ALL = List.of(LLAMA, MISTRAL, QWEN2);

  private ModelFamilies() {}

  /** Every registered family. */
  public static List<ModelFamily> all() {
    return ALL;
  }

  public static Optional<ModelFamily> byArchitecture(String architecture) {
    return ALL.stream().filter(f -> f.architecture().equals(architecture)).findFirst();
  }

  public static Optional<ModelFamily> byModelType(String modelType) {
    return ALL.stream().filter(f -> f.modelType().equals(modelType)).findFirst();
  }

  /**
   * The family of a config.json. Every listed architecture must be registered; {@code model_type}
   * must be registered too and name the same family. A disagreement is rejected rather than
   * resolved either way: the two would imply different bias layouts, and guessing would load a
   * checkpoint with tensors silently ignored or missing.
   *
   * @param architectures config.json's {@code architectures}, empty when absent
   * @param modelType config.json's {@code model_type}, null when absent
   * @param source what to call the config in messages
   */
  public static ModelFamily resolve(List<String> architectures, String modelType, String source) {
    for (String architecture : architectures) {
      if (byArchitecture(architecture).isEmpty()) {
        throw new ModelException(
            "unsupported architecture '"
                + architecture
                + "' in "
                + source
                + "; supported: "
                + supported(ModelFamily::architecture));
      }
    }
    ModelFamily family =
        byModelType(modelType)
            .orElseThrow(
                () ->
                    new ModelException(
                        "unsupported model_type '"
                            + modelType
                            + "' in "
                            + source
                            + "; supported: "
                            + supported(ModelFamily::modelType)));
    for (String architecture : architectures) {
      ModelFamily named = byArchitecture(architecture).orElseThrow();
      if (named != family) {
        throw new ModelException(
            source
                + ": architectures names "
                + architecture
                + " (model_type '"
                + named.modelType()
                + "') but model_type is '"
                + modelType
                + "'; make the two agree");
      }
    }
    return family;
  }

  private static String supported(java.util.function.Function<ModelFamily, String> key) {
    return ALL.stream().map(key).collect(Collectors.joining(", "));
  }
}
