package io.kiln.execution.llm;

import io.kiln.BackendException;

/**
 * A request's logits held NaN or infinity, so no token can be chosen honestly: the weights, the
 * config or the arithmetic broke. The request fails instead of emitting a made-up token.
 */
public class NonFiniteLogitsException extends BackendException {
  private static final long serialVersionUID = 1L;

  public NonFiniteLogitsException(String message) {
    super(message);
  }
}
