package io.kiln.model.llama;

import io.kiln.ModelException;

/**
 * One Llama-family architecture as config.json names it, and the few things that set it apart.
 * Register new families in {@link ModelFamilies}.
 *
 * @param architecture the class name in config.json's {@code architectures}, e.g. {@code
 *     LlamaForCausalLM}
 * @param modelType config.json's {@code model_type}, e.g. {@code llama}
 * @param alwaysQkvBias q, k and v projections carry biases whatever {@code attention_bias} says
 *     (Qwen2)
 * @param readsAttentionBias {@code attention_bias: true} puts biases on q, k, v and o
 * @param readsMlpBias {@code mlp_bias: true} puts biases on gate, up and down
 * @param slidingWindow when config.json's {@code sliding_window} applies
 * @param tiedEmbeddingsByDefault whether the lm_head is the embedding when config.json omits {@code
 *     tie_word_embeddings}
 */
public record ModelFamily(
    String architecture,
    String modelType,
    boolean alwaysQkvBias,
    boolean readsAttentionBias,
    boolean readsMlpBias,
    SlidingWindow slidingWindow,
    boolean tiedEmbeddingsByDefault) {

  /** When a family honours config.json's {@code sliding_window}. */
  public enum SlidingWindow {
    /** Whenever {@code sliding_window} is a positive number (Llama, Mistral). */
    WHEN_SET,
    /** Only when {@code use_sliding_window} is also true (Qwen2 ships a window it does not use). */
    WHEN_ENABLED
  }

  public ModelFamily {
    if (architecture == null
        || architecture.isBlank()
        || modelType == null
        || modelType.isBlank()) {
      throw new ModelException("a model family needs an architecture and a model_type");
    }
    if (slidingWindow == null) {
      throw new ModelException("model family " + architecture + " lacks its sliding-window rule");
    }
  }

  /** Whether q, k and v have biases, given config.json's {@code attention_bias}. */
  public boolean qkvBias(boolean attentionBias) {
    return alwaysQkvBias || (readsAttentionBias && attentionBias);
  }

  /** Whether the attention output projection has a bias, given {@code attention_bias}. */
  public boolean outputBias(boolean attentionBias) {
    return readsAttentionBias && attentionBias;
  }

  /** Whether the MLP projections have biases, given config.json's {@code mlp_bias}. */
  public boolean mlpBias(boolean mlpBias) {
    return readsMlpBias && mlpBias;
  }

  /** Whether a set {@code sliding_window} applies, given {@code use_sliding_window}. */
  public boolean slidingWindowEnabled(boolean useSlidingWindow) {
    return slidingWindow == SlidingWindow.WHEN_SET || useSlidingWindow;
  }
}
