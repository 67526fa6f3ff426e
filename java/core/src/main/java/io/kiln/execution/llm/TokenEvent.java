package io.kiln.execution.llm;

/**
 * One generated token.
 *
 * @param index position among the request's new tokens, from 0
 * @param finishReason null unless this is the request's last token
 */
public record TokenEvent(long requestId, int tokenId, int index, FinishReason finishReason) {
  public boolean isLast() {
    return finishReason != null;
  }
}
