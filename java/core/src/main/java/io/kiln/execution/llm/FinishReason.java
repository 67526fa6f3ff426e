package io.kiln.execution.llm;

/** Why a request stopped producing tokens. */
public enum FinishReason {
  /** It produced a stop token (the model's EOS or one of the request's stop tokens). */
  STOP,
  /** It reached its max new tokens, the model's context or the KV pool's capacity. */
  LENGTH,
  CANCELLED,
  /** The model runner failed during one of its steps. */
  ERROR
}
