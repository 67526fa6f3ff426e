package io.kiln.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.kiln.ModelException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
  private static final String LLAMA_31_8B =
      "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":4096,"
          + "\"intermediate_size\":14336,\"num_hidden_layers\":32,\"num_attention_heads\":32,"
          + "\"num_key_value_heads\":8,\"vocab_size\":128256,\"max_position_embeddings\":131072,"
          + "\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":32.0,"
          + "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,"
          + "\"rope_type\":\"llama3\"},\"tie_word_embeddings\":false,\"bos_token_id\":128000,"
          + "\"eos_token_id\":[128001,128008,128009]}";

  @Test
  void readsThePublicModel() {
    LlamaConfig c = LlamaConfig.load(PublicLlama.directory());
    assertEquals(128, c.hiddenSize());
    assertEquals(3, c.numLayers());
    assertEquals(4, c.numHeads());
    assertEquals(2, c.numKvHeads());
    assertEquals(32, c.headDim());
    assertEquals(344, c.intermediateSize());
    assertEquals(10000.0, c.ropeTheta()); // from transformers 5's rope_parameters
    assertEquals("default", c.ropeScaling().type());
    assertFalse(c.tieWordEmbeddings());
    assertEquals(2, c.eosTokenId());
  }

  @Test
  void llama3RopeScalingMatchesTheReferenceFormula() {
    LlamaConfig c = LlamaConfig.parse(LLAMA_31_8B);
    assertEquals(128, c.headDim());
    assertEquals(4, c.groupSize());
    assertEquals(128001, c.eosTokenId());
    double[] inv = c.inverseFrequencies();
    // Expected values from an independent numpy transcription of the Llama 3.1 formula.
    double[][] expected = {
      {0, 1.0}, {20, 0.016560440080994446}, {30, 0.001290547928209264},
      {40, 8.570255489881478e-06}, {45, 3.0744096694909034e-06}, {63, 7.672314972286278e-08}
    };
    for (double[] e : expected) {
      assertEquals(e[1], inv[(int) e[0]], e[1] * 1e-12, "frequency " + (int) e[0]);
    }
  }

  @Test
  void qwen2HasQkvBiasAndMistralASlidingWindow() {
    LlamaConfig qwen =
        LlamaConfig.parse(
            "{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":896,"
                + "\"intermediate_size\":4864,\"num_hidden_layers\":24,\"num_attention_heads\":14,"
                + "\"num_key_value_heads\":2,\"vocab_size\":151936,\"max_position_embeddings\":32768,"
                + "\"rope_theta\":1000000.0,\"sliding_window\":32768,\"use_sliding_window\":false,"
                + "\"tie_word_embeddings\":true,\"rms_norm_eps\":1e-06}");
    assertTrue(qwen.qkvBias());
    assertFalse(qwen.outputBias());
    assertTrue(qwen.tieWordEmbeddings());
    assertEquals(64, qwen.headDim());
    assertEquals(0, qwen.slidingWindow());
    assertEquals(1000000.0, qwen.ropeTheta());

    LlamaConfig mistral =
        LlamaConfig.parse(
            "{\"architectures\":[\"MistralForCausalLM\"],\"model_type\":\"mistral\",\"hidden_size\":4096,"
                + "\"intermediate_size\":14336,\"num_hidden_layers\":32,\"num_attention_heads\":32,"
                + "\"num_key_value_heads\":8,\"vocab_size\":32000,\"max_position_embeddings\":32768,"
                + "\"rope_theta\":10000.0,\"sliding_window\":4096,\"rms_norm_eps\":1e-05}");
    assertEquals(4096, mistral.slidingWindow());
    assertFalse(mistral.qkvBias());
    assertFalse(mistral.tieWordEmbeddings());
  }

  @Test
  void unsupportedArchitectureIsNamed() {
    ModelException e =
        assertThrows(
            ModelException.class,
            () ->
                LlamaConfig.parse(
                    "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"hidden_size\":8}"));
    assertTrue(
        e.getMessage().contains("unsupported architecture 'GPT2LMHeadModel'"), e.getMessage());
    ModelException t =
        assertThrows(
            ModelException.class,
            () -> LlamaConfig.parse("{\"model_type\":\"falcon\",\"hidden_size\":8}"));
    assertTrue(t.getMessage().contains("unsupported model_type 'falcon'"), t.getMessage());
    ModelException r =
        assertThrows(
            ModelException.class,
            () -> LlamaConfig.parse(LLAMA_31_8B.replace("\"llama3\"", "\"yarn\"")));
    assertTrue(r.getMessage().contains("'yarn'"), r.getMessage());
  }

  @Test
  void missingTensorInAModelDirectoryIsNamed(@TempDir Path dir) throws Exception {
    Path src = PublicLlama.directory();
    Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
    // Same weights minus one layer norm.
    try (io.kiln.model.safetensors.SafetensorsModel st =
        io.kiln.model.safetensors.SafetensorsModel.open(src)) {
      java.util.Map<String, float[]> kept = new java.util.LinkedHashMap<>();
      java.util.Map<String, long[]> shapes = new java.util.HashMap<>();
      for (String name : st.names()) {
        if (!name.equals("model.layers.1.post_attention_layernorm.weight")) {
          kept.put(name, st.readFloats(name, st.tensor(name).shape()));
          shapes.put(name, st.tensor(name).shape());
        }
      }
      io.kiln.model.safetensors.SafetensorsWriter.writeAll(
          dir.resolve("model.safetensors"), kept, shapes, io.kiln.DType.F32);
    }
    ModelException e = assertThrows(ModelException.class, () -> LlamaWeights.load(dir));
    assertTrue(
        e.getMessage().contains("'model.layers.1.post_attention_layernorm.weight'"),
        e.getMessage());
    ModelException export =
        assertThrows(
            ModelException.class, () -> LlamaOnnxExporter.export(dir, dir.resolve("onnx"), false));
    assertTrue(
        export
            .getMessage()
            .contains("missing tensor 'model.layers.1.post_attention_layernorm.weight'"),
        export.getMessage());
  }
}
