package io.kiln.model.llama;

import io.kiln.InvalidInputException;

/**
 * The Hugging Face tensor names of a Llama-family checkpoint, spelled once. Loaders, exporters and
 * writers ask here instead of building {@code "model.layers." + i + ...} strings themselves.
 */
public final class LlamaTensors {
  private static final String LAYER_PREFIX = "model.layers.";

  private LlamaTensors() {}

  /** Token embedding, {@code [vocab][hidden]}. */
  public static String embedding() {
    return "model.embed_tokens.weight";
  }

  /** RMSNorm weight after the last layer, {@code [hidden]}. */
  public static String finalNorm() {
    return "model.norm.weight";
  }

  /** Output projection, {@code [vocab][hidden]}; absent when tied to the embedding. */
  public static String lmHead() {
    return "lm_head.weight";
  }

  /**
   * The scale of a quantized weight: one value, or one per output row ({@code [out]} or {@code
   * [out][1]}), that its stored INT8 or FP8 codes are multiplied by.
   */
  public static String weightScale(String weight) {
    return weight + "_scale";
  }

  /** The block scales of a block-quantized FP8 weight ({@code [out/b][in/b]}), multiplied too. */
  public static String weightBlockScale(String weight) {
    return weight + "_scale_inv";
  }

  /** The names of transformer block {@code index}. */
  public static Layer layer(int index) {
    if (index < 0) {
      throw new InvalidInputException("layer index must be >= 0, got " + index);
    }
    return new Layer(index);
  }

  /**
   * The tensors of one transformer block. Matrices are {@code [out][in]}; each projection's bias
   * exists only where the family or config says so.
   */
  public record Layer(int index) {
    private String name(String suffix) {
      return LAYER_PREFIX + index + "." + suffix;
    }

    /** RMSNorm weight before attention. */
    public String attentionNorm() {
      return name("input_layernorm.weight");
    }

    public String qProj() {
      return name("self_attn.q_proj.weight");
    }

    public String qProjBias() {
      return name("self_attn.q_proj.bias");
    }

    public String kProj() {
      return name("self_attn.k_proj.weight");
    }

    public String kProjBias() {
      return name("self_attn.k_proj.bias");
    }

    public String vProj() {
      return name("self_attn.v_proj.weight");
    }

    public String vProjBias() {
      return name("self_attn.v_proj.bias");
    }

    public String oProj() {
      return name("self_attn.o_proj.weight");
    }

    public String oProjBias() {
      return name("self_attn.o_proj.bias");
    }

    /** RMSNorm weight before the MLP. */
    public String mlpNorm() {
      return name("post_attention_layernorm.weight");
    }

    public String gateProj() {
      return name("mlp.gate_proj.weight");
    }

    public String gateProjBias() {
      return name("mlp.gate_proj.bias");
    }

    public String upProj() {
      return name("mlp.up_proj.weight");
    }

    public String upProjBias() {
      return name("mlp.up_proj.bias");
    }

    public String downProj() {
      return name("mlp.down_proj.weight");
    }

    public String downProjBias() {
      return name("mlp.down_proj.bias");
    }
  }
}
