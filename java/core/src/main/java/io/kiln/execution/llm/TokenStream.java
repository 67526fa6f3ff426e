package io.kiln.execution.llm;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * One request's tokens as a blocking iterator. {@link #next} waits for the next token; when the
 * request was cancelled or failed, {@link #hasNext} throws that error. Closing cancels the request
 * if it is still running.
 */
public final class TokenStream implements Iterator<TokenEvent>, AutoCloseable {
  private static final Object END = new Object();

  private final LinkedBlockingQueue<Object> items = new LinkedBlockingQueue<>();
  private GenerationHandle handle;
  private Object next;
  private boolean ended;

  final TokenListener listener =
      new TokenListener() {
        @Override
        public void onToken(TokenEvent event) {
          items.add(event);
        }

        @Override
        public void onComplete(GenerationResult result) {
          items.add(END);
        }

        @Override
        public void onError(Throwable error) {
          items.add(error);
        }
      };

  void attach(GenerationHandle handle) {
    this.handle = handle;
  }

  public GenerationHandle handle() {
    return handle;
  }

  @Override
  public boolean hasNext() {
    if (next == null && !ended) {
      try {
        next = items.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for a token", e);
      }
    }
    if (next == END) {
      ended = true;
      next = null;
      return false;
    }
    if (next instanceof RuntimeException error) {
      ended = true;
      next = null;
      throw error;
    }
    if (next instanceof Throwable error) {
      ended = true;
      next = null;
      throw new IllegalStateException(error);
    }
    return next != null;
  }

  @Override
  public TokenEvent next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    TokenEvent event = (TokenEvent) next;
    next = null;
    return event;
  }

  @Override
  public void close() {
    handle.cancel();
  }
}
