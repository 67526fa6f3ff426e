package io.kiln.execution.llm;

import io.kiln.execution.kv.CachedPrefix;
import io.kiln.execution.kv.KvBlockManager;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;

/**
 * Continuous batching: decides each step which requests run and how many of their tokens, under
 * {@code maxNumSeqs} and {@code maxNumBatchedTokens}. Running requests go first, oldest first: each
 * needs one decode token or the next chunk of its prefill. When the pool cannot grow a request, the
 * newest running request is preempted by recompute: its blocks are freed and it waits at the front
 * of the queue, to recompute its prompt and generated tokens later. Waiting requests join whenever
 * sequences, tokens and blocks allow, skipping their prefix-cached full blocks. Single-threaded:
 * the engine thread owns it.
 */
final class Scheduler {
  private final SchedulerConfig config;
  private final KvBlockManager kv;
  private final Deque<LlmRequest> waiting = new ArrayDeque<>();
  private final List<LlmRequest> running = new ArrayList<>(); // oldest first
  private long preemptions;
  private long prefixHitTokens;
  private int peakUsedBlocks;

  Scheduler(SchedulerConfig config, KvBlockManager kv) {
    this.config = config;
    this.kv = kv;
  }

  void add(LlmRequest request) {
    waiting.addLast(request);
  }

  boolean hasWork() {
    return !waiting.isEmpty() || !running.isEmpty();
  }

  int numWaiting() {
    return waiting.size();
  }

  int numRunning() {
    return running.size();
  }

  long preemptions() {
    return preemptions;
  }

  long prefixHitTokens() {
    return prefixHitTokens;
  }

  int peakUsedBlocks() {
    return peakUsedBlocks;
  }

  KvBlockManager kv() {
    return kv;
  }

  /** Removes a request wherever it is and frees its blocks; null when it is not here. */
  LlmRequest remove(long requestId) {
    for (Iterator<LlmRequest> it = waiting.iterator(); it.hasNext(); ) {
      LlmRequest r = it.next();
      if (r.id == requestId) {
        it.remove();
        return r;
      }
    }
    for (Iterator<LlmRequest> it = running.iterator(); it.hasNext(); ) {
      LlmRequest r = it.next();
      if (r.id == requestId) {
        it.remove();
        kv.free(r.id);
        return r;
      }
    }
    return null;
  }

  /** Removes every request, freeing their blocks (engine shutdown). */
  List<LlmRequest> removeAll() {
    List<LlmRequest> all = new ArrayList<>(running);
    all.addAll(waiting);
    for (LlmRequest r : running) {
      kv.free(r.id);
    }
    running.clear();
    waiting.clear();
    return all;
  }

  ScheduledStep schedule() {
    ScheduledStep step = new ScheduledStep();
    int budget = config.maxNumBatchedTokens();
    boolean preempted = false;
    for (int i = 0; i < running.size() && budget > 0; i++) {
      LlmRequest r = running.get(i);
      int n = Math.min(r.numTokens - r.numComputed, budget);
      boolean scheduled = true;
      while (!kv.allocateSlots(r.id, null, r.numComputed + n)) {
        LlmRequest victim = running.remove(running.size() - 1);
        preempt(victim);
        preempted = true;
        if (victim == r) {
          scheduled = false;
          break;
        }
      }
      if (!scheduled) {
        break;
      }
      add(step, r, n);
      budget -= n;
    }
    // After a preemption the pool is short: let the running requests drain before admitting.
    while (!preempted && budget > 0 && !waiting.isEmpty() && running.size() < config.maxNumSeqs()) {
      LlmRequest r = waiting.peekFirst();
      int[] known = r.knownTokens();
      CachedPrefix hit = kv.findCachedPrefix(known);
      int n = Math.min(r.numTokens - hit.numTokens(), budget);
      if (!kv.allocateSlots(r.id, hit, hit.numTokens() + n)) {
        break;
      }
      waiting.removeFirst();
      r.numComputed = hit.numTokens();
      if (r.cachedPromptTokens < 0) {
        r.cachedPromptTokens = Math.min(hit.numTokens(), r.promptLength);
      }
      prefixHitTokens += hit.numTokens();
      running.add(r);
      add(step, r, n);
      budget -= n;
    }
    peakUsedBlocks = Math.max(peakUsedBlocks, kv.numUsedBlocks());
    return step;
  }

  private void add(ScheduledStep step, LlmRequest r, int n) {
    int start = r.numComputed;
    step.requests.add(r);
    step.chunks.add(
        new SequenceChunk(
            r.id,
            Arrays.copyOfRange(r.tokens, start, start + n),
            start,
            kv.blockTable(r.id),
            start + n == r.numTokens));
    step.numTokens += n;
  }

  private void preempt(LlmRequest r) {
    kv.free(r.id);
    r.numComputed = 0;
    r.preemptions++;
    preemptions++;
    waiting.addFirst(r);
  }

  /**
   * Applies a step's logits: advances each request, samples where the chunk reached the end of its
   * known tokens, and removes finished requests at once. Returns the new tokens in step order. With
   * {@code greedyTokens} (from {@link ModelRunner#forwardGreedy}) those are taken instead.
   */
  List<TokenEvent> complete(
      ScheduledStep step, float[][] logits, int[] greedyTokens, long nowNanos) {
    List<TokenEvent> events = new ArrayList<>();
    for (int i = 0; i < step.chunks.size(); i++) {
      SequenceChunk chunk = step.chunks.get(i);
      LlmRequest r = step.requests.get(i);
      r.numComputed += chunk.tokens().length;
      kv.cacheFullBlocks(r.id, r.tokens, r.numComputed);
      if (!chunk.wantLogits()) {
        continue;
      }
      int token =
          greedyTokens != null
              ? greedyTokens[i]
              : r.sampler.sample(logits[i], r.tokens, r.numTokens);
      int index = r.numGenerated();
      FinishReason finish = r.append(token, nowNanos);
      if (finish != null) {
        r.finishReason = finish;
        running.remove(r);
        kv.free(r.id);
      }
      events.add(new TokenEvent(r.id, token, index, finish));
    }
    return events;
  }

  /** Drops the requests of a failed step from the running set, freeing their blocks. */
  void abort(ScheduledStep step) {
    for (LlmRequest r : step.requests) {
      running.remove(r);
      kv.free(r.id);
    }
  }
}
