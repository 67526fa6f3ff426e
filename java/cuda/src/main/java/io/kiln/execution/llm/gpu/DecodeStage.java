package io.kiln.execution.llm.gpu;

import java.util.EnumSet;
import java.util.Set;

/**
 * The parts of a forward step, so that a decode step can be replayed one part at a time to see
 * where its time goes. Where the skinny GEMM fuses two parts (QKV with RoPE, the MLP's up product
 * with SiLU), the fused kernel runs only when both are selected.
 */
public enum DecodeStage {
  /** Embedding gather, every RMSNorm, residual add and the logits-row gather. */
  NORMS("norms, residuals, embedding"),
  QKV("QKV projection"),
  ROPE_KV("RoPE and K/V write"),
  ATTENTION("attention and split combine"),
  O_PROJ("output projection"),
  MLP_UP("gate/up projection"),
  SILU("SiLU gate"),
  MLP_DOWN("down projection"),
  LM_HEAD("LM head");

  public static final Set<DecodeStage> ALL = EnumSet.allOf(DecodeStage.class);

  /** The weight-streaming products. */
  public static final Set<DecodeStage> DENSE = EnumSet.of(QKV, O_PROJ, MLP_UP, MLP_DOWN, LM_HEAD);

  private final String label;

  DecodeStage(String label) {
    this.label = label;
  }

  /** What the stage runs, for reports. */
  public String label() {
    return label;
  }
}
