package io.kiln.execution.batching;

import io.kiln.BackendException;
import io.kiln.ClosedException;
import io.kiln.InvalidInputException;
import io.kiln.Tensor;
import io.kiln.TensorInfo;
import io.kiln.engine.Engine;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Merges concurrent requests into one engine run. A worker takes the first waiting request, then
 * adds more that can share its run (same shape past the batch axis; a model with a rank-2 attention
 * mask, and outputs dynamic only in axes 0 and 1, also accepts other lengths on axis 1, padded with
 * zeros) until {@code maxBatch} rows, until every caller currently inside {@link #infer} is in the
 * batch, or until {@code maxWaitMicros} have passed since the first arrived. A lone caller
 * therefore never waits: its latency is the engine's. Rows are stacked along axis 0 and the outputs
 * are cut back per caller. A request that cannot join the open batch starts the next one.
 *
 * <p>The batcher does not own the engine. Callers own the tensors they get back.
 */
public final class DynamicBatcher implements AutoCloseable {
  private final Engine engine;
  private final int maxBatch;
  private final long maxWaitNanos;
  private final LinkedBlockingQueue<Request> queue = new LinkedBlockingQueue<>();
  private final AtomicInteger callers = new AtomicInteger();
  private final Thread worker;
  private final Map<String, TensorInfo> inputInfo = new HashMap<>();
  private final AtomicLong requests = new AtomicLong();
  private final AtomicLong batches = new AtomicLong();
  private final AtomicLong rows = new AtomicLong();
  private final AtomicLong largest = new AtomicLong();
  private final boolean canPad;
  private volatile boolean closed;

  private record Request(
      Map<String, Tensor> inputs,
      long rows,
      String shapeKey,
      CompletableFuture<Map<String, Tensor>> result) {}

  public DynamicBatcher(Engine engine, int maxBatch, long maxWaitMicros) {
    if (maxBatch < 1 || maxWaitMicros < 0) {
      throw new InvalidInputException("maxBatch must be >= 1 and maxWait >= 0");
    }
    this.engine = engine;
    this.maxBatch = maxBatch;
    this.maxWaitNanos = maxWaitMicros * 1000;
    for (TensorInfo t : engine.inputs()) {
      inputInfo.put(t.name(), t);
    }
    this.canPad = MergedRun.canPad(engine.inputs(), engine.outputs());
    worker = new Thread(this::loop, "kiln-batcher");
    worker.setDaemon(true);
    worker.start();
  }

  /** Runs {@code inputs} as part of a merged batch and waits for its own rows of the outputs. */
  public Map<String, Tensor> infer(Map<String, Tensor> inputs) {
    callers.incrementAndGet();
    CompletableFuture<Map<String, Tensor>> result = null;
    try {
      result = submit(inputs);
      return result.get();
    } catch (InterruptedException e) {
      // The worker may be reading this caller's inputs: wait it out, so that the caller can free
      // them once this throws, and free the outputs nobody will take.
      try {
        result.join().values().forEach(Tensor::close);
      } catch (RuntimeException ignored) {
        // the run failed; there is nothing to free
      }
      Thread.currentThread().interrupt();
      throw new BackendException("interrupted while waiting for a batched result");
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r; // the engine's own exception type, as an unbatched run would throw
      }
      throw new BackendException("batched run failed: " + e.getCause(), e.getCause());
    } finally {
      callers.decrementAndGet();
    }
  }

  /** Queues {@code inputs}; the future completes with this request's outputs. */
  public CompletableFuture<Map<String, Tensor>> submit(Map<String, Tensor> inputs) {
    if (closed) {
      throw new ClosedException("the session's batcher is closed");
    }
    if (inputs.isEmpty()) {
      throw new InvalidInputException("no inputs");
    }
    long n = -1;
    StringBuilder key = new StringBuilder();
    for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
      Tensor t = e.getValue();
      if (t.rank() == 0) {
        throw new InvalidInputException("input '" + e.getKey() + "' has no batch axis");
      }
      if (n >= 0 && t.dim(0) != n) {
        throw new InvalidInputException("inputs disagree on the batch size");
      }
      n = t.dim(0);
      boolean padded = canPad && hasSeqAxis(inputInfo.get(e.getKey())) && t.rank() > 1;
      key.append(e.getKey()).append(':').append(t.dtype()).append('[');
      for (int a = 1; a < t.rank(); a++) {
        key.append(a == 1 && padded ? "*" : Long.toString(t.dim(a))).append(',');
      }
      key.append(']');
    }
    CompletableFuture<Map<String, Tensor>> f = new CompletableFuture<>();
    queue.add(new Request(inputs, n, key.toString(), f));
    return f;
  }

  public BatcherStats stats() {
    return new BatcherStats(requests.get(), batches.get(), rows.get(), largest.get());
  }

  private void loop() {
    Request held = null; // a request that could not join the previous batch
    while (!closed) {
      Request first = held;
      held = null;
      if (first == null) {
        try {
          first = queue.poll(100, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          return;
        }
        if (first == null) {
          continue;
        }
      }
      List<Request> batch = new ArrayList<>();
      batch.add(first);
      long total = first.rows();
      long deadline = System.nanoTime() + maxWaitNanos;
      while (total < maxBatch) {
        Request next = queue.peek();
        if (next != null) {
          if (!fits(next, first, total)) {
            break; // it stays first in the queue and opens the next batch
          }
          queue.poll();
          batch.add(next);
          total += next.rows();
          continue;
        }
        // Every caller inside infer() is in this batch: waiting would only add latency.
        if (batch.size() >= callers.get()) {
          break;
        }
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        try {
          Request r = queue.poll(Math.min(left, 50_000), TimeUnit.NANOSECONDS);
          if (r != null) {
            if (!fits(r, first, total)) {
              held = r;
              break;
            }
            batch.add(r);
            total += r.rows();
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      runBatch(batch);
    }
    if (held != null) {
      held.result()
          .completeExceptionally(new ClosedException("the session closed before this call ran"));
    }
  }

  /** Whether {@code r} may join a batch opened by {@code first} that holds {@code total} rows. */
  private boolean fits(Request r, Request first, long total) {
    return total + r.rows() <= maxBatch && r.shapeKey().equals(first.shapeKey());
  }

  private void runBatch(List<Request> batch) {
    long total = 0;
    for (Request r : batch) {
      total += r.rows();
    }
    requests.addAndGet(batch.size());
    batches.incrementAndGet();
    rows.addAndGet(total);
    largest.accumulateAndGet(total, Math::max);
    try {
      List<Map<String, Tensor>> feeds = new ArrayList<>();
      for (Request r : batch) {
        feeds.add(r.inputs());
      }
      List<Map<String, Tensor>> outputs = MergedRun.run(engine, feeds, canPad);
      for (int i = 0; i < batch.size(); i++) {
        batch.get(i).result().complete(outputs.get(i));
      }
    } catch (RuntimeException e) {
      for (Request r : batch) {
        r.result().completeExceptionally(e);
      }
    }
  }

  private static boolean hasSeqAxis(TensorInfo info) {
    return info != null && info.rank() > 1 && info.isDynamic(1);
  }

  @Override
  public void close() {
    closed = true;
    worker.interrupt();
    try {
      worker.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Request r;
    while ((r = queue.poll()) != null) {
      r.result()
          .completeExceptionally(new ClosedException("the session closed before this call ran"));
    }
  }
}
