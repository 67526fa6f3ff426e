package io.kiln.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.ModelException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** config.json's architectures and model_type resolve to one registered family, or fail clearly. */
class ModelFamiliesTest {
  /** A minimal valid config.json body after the architectures and model_type fields. */
  private static final String SHAPE =
      "\"hidden_size\":8,\"intermediate_size\":16,\"num_hidden_layers\":1,"
          + "\"num_attention_heads\":2,\"vocab_size\":10,\"max_position_embeddings\":64";

  private static String config(String architecture, String modelType, String extra) {
    return "{\"architectures\":[\""
        + architecture
        + "\"],\"model_type\":\""
        + modelType
        + "\","
        + extra
        + SHAPE
        + "}";
  }

  @Test
  void eachFamilyResolvesFromItsArchitectureAndModelType() {
    assertEquals(3, ModelFamilies.all().size());
    for (ModelFamily family : ModelFamilies.all()) {
      assertSame(
          family,
          ModelFamilies.resolve(List.of(family.architecture()), family.modelType(), "config.json"));
      assertSame(family, ModelFamilies.resolve(List.of(), family.modelType(), "config.json"));
      LlamaConfig parsed = LlamaConfig.parse(config(family.architecture(), family.modelType(), ""));
      assertEquals(family.modelType(), parsed.modelType());
    }
    assertEquals(
        "qwen2", ModelFamilies.byArchitecture("Qwen2ForCausalLM").orElseThrow().modelType());
    assertEquals(
        "MistralForCausalLM", ModelFamilies.byModelType("mistral").orElseThrow().architecture());
  }

  @Test
  void familiesDifferInBiasesAndTheSlidingWindow() {
    String biased = "\"attention_bias\":true,\"mlp_bias\":true,";
    LlamaConfig llama = LlamaConfig.parse(config("LlamaForCausalLM", "llama", biased));
    assertTrue(llama.qkvBias() && llama.outputBias() && llama.mlpBias());
    LlamaConfig qwen = LlamaConfig.parse(config("Qwen2ForCausalLM", "qwen2", biased));
    assertTrue(qwen.qkvBias(), "qwen2 always has q/k/v biases");
    assertFalse(qwen.outputBias(), "qwen2 ignores attention_bias for o_proj");
    assertFalse(LlamaConfig.parse(config("LlamaForCausalLM", "llama", "")).qkvBias());

    String window = "\"sliding_window\":16,";
    assertEquals(
        16, LlamaConfig.parse(config("MistralForCausalLM", "mistral", window)).slidingWindow());
    assertEquals(0, LlamaConfig.parse(config("Qwen2ForCausalLM", "qwen2", window)).slidingWindow());
    assertEquals(
        16,
        LlamaConfig.parse(
                config("Qwen2ForCausalLM", "qwen2", window + "\"use_sliding_window\":true,"))
            .slidingWindow());
    assertFalse(LlamaConfig.parse(config("Qwen2ForCausalLM", "qwen2", "")).tieWordEmbeddings());
  }

  @Test
  void unknownArchitectureIsOneLineNamingTheSupportedOnes() {
    ModelException e =
        assertThrows(
            ModelException.class, () -> LlamaConfig.parse(config("GPT2LMHeadModel", "llama", "")));
    assertEquals(
        "unsupported architecture 'GPT2LMHeadModel' in config.json; supported: LlamaForCausalLM,"
            + " MistralForCausalLM, Qwen2ForCausalLM",
        e.getMessage());
  }

  @Test
  void unknownModelTypeIsOneLineNamingTheSupportedOnes() {
    ModelException e =
        assertThrows(
            ModelException.class, () -> LlamaConfig.parse(config("LlamaForCausalLM", "gemma", "")));
    assertEquals(
        "unsupported model_type 'gemma' in config.json; supported: llama, mistral, qwen2",
        e.getMessage());
    ModelException missing =
        assertThrows(ModelException.class, () -> LlamaConfig.parse("{" + SHAPE + "}"));
    assertTrue(
        missing.getMessage().startsWith("unsupported model_type 'null'"), missing.getMessage());
  }

  /** The two fields imply different bias layouts, so a disagreement is refused, not guessed. */
  @Test
  void architectureAndModelTypeMustAgree() {
    ModelException e =
        assertThrows(
            ModelException.class, () -> LlamaConfig.parse(config("Qwen2ForCausalLM", "llama", "")));
    assertEquals(
        "config.json: architectures names Qwen2ForCausalLM (model_type 'qwen2') but model_type is"
            + " 'llama'; make the two agree",
        e.getMessage());
    assertFalse(e.getMessage().contains("\n"));
  }
}
