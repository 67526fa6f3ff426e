package io.kiln.execution.llm;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A cold publisher of one request's tokens: subscribing submits the request, cancelling the
 * subscription cancels it. Tokens wait in a buffer until the subscriber requests them, so the
 * engine never blocks on a slow subscriber. Single subscriber.
 */
final class TokenPublisher implements Flow.Publisher<TokenEvent> {
  /** The engine's submit, passed in so that a publisher never names its engine. */
  interface Submitter {
    GenerationHandle submit(int[] prompt, SamplingParams params, TokenListener listener);
  }

  private final Submitter submitter;
  private final int[] prompt;
  private final SamplingParams params;
  private final AtomicBoolean subscribed = new AtomicBoolean();

  TokenPublisher(Submitter submitter, int[] prompt, SamplingParams params) {
    this.submitter = submitter;
    this.prompt = prompt;
    this.params = params;
  }

  @Override
  public void subscribe(Flow.Subscriber<? super TokenEvent> subscriber) {
    if (!subscribed.compareAndSet(false, true)) {
      subscriber.onSubscribe(new NoSubscription());
      subscriber.onError(new IllegalStateException("this token publisher allows one subscriber"));
      return;
    }
    Subscription subscription = new Subscription(subscriber);
    try {
      subscription.handle = submitter.submit(prompt, params, subscription);
    } catch (RuntimeException e) {
      subscriber.onSubscribe(new NoSubscription());
      subscriber.onError(e);
      return;
    }
    subscriber.onSubscribe(subscription);
    subscription.started = true;
    subscription.drain();
  }

  private static final class NoSubscription implements Flow.Subscription {
    @Override
    public void request(long n) {}

    @Override
    public void cancel() {}
  }

  private static final class Subscription implements Flow.Subscription, TokenListener {
    private final Flow.Subscriber<? super TokenEvent> subscriber;
    private final ConcurrentLinkedQueue<TokenEvent> buffer = new ConcurrentLinkedQueue<>();
    private final AtomicLong requested = new AtomicLong();
    private final AtomicInteger work = new AtomicInteger();
    volatile GenerationHandle handle;
    volatile boolean started;
    private volatile boolean done;
    private volatile Throwable error;
    private volatile boolean cancelled;
    private boolean terminated;

    Subscription(Flow.Subscriber<? super TokenEvent> subscriber) {
      this.subscriber = subscriber;
    }

    @Override
    public void request(long n) {
      if (n <= 0) {
        error = new IllegalArgumentException("request(n) needs n > 0, got " + n);
        done = true;
        handle.cancel();
        buffer.clear();
      } else {
        requested.getAndAccumulate(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
      }
      drain();
    }

    @Override
    public void cancel() {
      cancelled = true;
      handle.cancel();
    }

    @Override
    public void onToken(TokenEvent event) {
      buffer.add(event);
      drain();
    }

    @Override
    public void onComplete(GenerationResult result) {
      done = true;
      drain();
    }

    @Override
    public void onError(Throwable e) {
      // A bad request(n) already failed the subscription; the cancellation it caused must not
      // replace that error.
      if (!done) {
        error = e;
        done = true;
      }
      drain();
    }

    /** Emits buffered tokens as demand allows; signals are serialized by the work counter. */
    void drain() {
      if (!started || work.getAndIncrement() != 0) {
        return;
      }
      int missed = 1;
      while (true) {
        while (!cancelled && !terminated && requested.get() > 0 && !buffer.isEmpty()) {
          requested.decrementAndGet();
          subscriber.onNext(buffer.poll());
        }
        if (!cancelled && !terminated && done && (buffer.isEmpty() || error != null)) {
          terminated = true;
          if (error != null) {
            subscriber.onError(error);
          } else {
            subscriber.onComplete();
          }
        }
        missed = work.addAndGet(-missed);
        if (missed == 0) {
          return;
        }
      }
    }
  }
}
