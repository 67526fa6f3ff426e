package io.kiln.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.kiln.InvalidInputException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The table spells exactly the names Hugging Face checkpoints use. */
class LlamaTensorsTest {
  @Test
  void topLevelNamesAreHuggingFaces() {
    assertEquals("model.embed_tokens.weight", LlamaTensors.embedding());
    assertEquals("model.norm.weight", LlamaTensors.finalNorm());
    assertEquals("lm_head.weight", LlamaTensors.lmHead());
  }

  @Test
  void layerNamesCarryTheIndex() {
    LlamaTensors.Layer layer = LlamaTensors.layer(3);
    assertEquals(
        List.of(
            "model.layers.3.input_layernorm.weight",
            "model.layers.3.self_attn.q_proj.weight",
            "model.layers.3.self_attn.q_proj.bias",
            "model.layers.3.self_attn.k_proj.weight",
            "model.layers.3.self_attn.k_proj.bias",
            "model.layers.3.self_attn.v_proj.weight",
            "model.layers.3.self_attn.v_proj.bias",
            "model.layers.3.self_attn.o_proj.weight",
            "model.layers.3.self_attn.o_proj.bias",
            "model.layers.3.post_attention_layernorm.weight",
            "model.layers.3.mlp.gate_proj.weight",
            "model.layers.3.mlp.gate_proj.bias",
            "model.layers.3.mlp.up_proj.weight",
            "model.layers.3.mlp.up_proj.bias",
            "model.layers.3.mlp.down_proj.weight",
            "model.layers.3.mlp.down_proj.bias"),
        List.of(
            layer.attentionNorm(),
            layer.qProj(),
            layer.qProjBias(),
            layer.kProj(),
            layer.kProjBias(),
            layer.vProj(),
            layer.vProjBias(),
            layer.oProj(),
            layer.oProjBias(),
            layer.mlpNorm(),
            layer.gateProj(),
            layer.gateProjBias(),
            layer.upProj(),
            layer.upProjBias(),
            layer.downProj(),
            layer.downProjBias()));
  }

  @Test
  void negativeLayerIndexIsRejected() {
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> LlamaTensors.layer(-1));
    assertEquals("layer index must be >= 0, got -1", e.getMessage());
  }
}
