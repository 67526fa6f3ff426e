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
 * sequences, tokens and blocks allow, skipping their prefix-cached full blocks. With a {@link
 * Speculator}, a decoding request also reserves slots and budget for its proposed tokens, when the
 * pool has them without preempting anyone. Single-threaded: the engine thread owns it.
 */
final class Scheduler {
  private final SchedulerConfig config;
  private final KvBlockManager kv;
  private final Speculator speculator; // null: no speculation
  private final Deque<LlmRequest> waiting = new ArrayDeque<>();
  private final List<LlmRequest> running = new ArrayList<>(); // oldest first
  private long preemptions;
  private long prefixHitTokens;
  private int peakUsedBlocks;

  Scheduler(SchedulerConfig config, KvBlockManager kv, Speculator speculator) {
    this.config = config;
    this.kv = kv;
    this.speculator = speculator;
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
        release(r);
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
      release(r);
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
      int lookahead = n == 1 ? lookahead(r, budget - 1) : 0;
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
      add(step, r, n, lookahead);
      budget -= n + lookahead;
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
      add(step, r, n, 0);
      budget -= n;
    }
    peakUsedBlocks = Math.max(peakUsedBlocks, kv.numUsedBlocks());
    return step;
  }

  /**
   * Slots for a decode's proposed tokens, reserved only from free blocks: speculation never
   * preempts. 0 when the request does not speculate or the pool is short.
   */
  private int lookahead(LlmRequest r, int budget) {
    if (speculator == null || r.numTokens - r.numComputed != 1) {
      return 0;
    }
    int lookahead = Math.min(speculator.lookahead(r), budget);
    return lookahead > 0 && kv.allocateSlots(r.id, null, r.numTokens + lookahead) ? lookahead : 0;
  }

  private void add(ScheduledStep step, LlmRequest r, int n, int lookahead) {
    int start = r.numComputed;
    step.add(
        r,
        new SequenceChunk(
            r.id,
            Arrays.copyOfRange(r.tokens, start, start + n),
            start,
            kv.blockTable(r.id),
            start + n == r.numTokens),
        lookahead,
        Proposal.NONE);
  }

  private void preempt(LlmRequest r) {
    release(r);
    r.numComputed = 0;
    r.preemptions++;
    preemptions++;
    waiting.addFirst(r);
  }

  /** Frees a request's blocks, and its proposer's state. */
  private void release(LlmRequest r) {
    kv.free(r.id);
    if (speculator != null) {
      speculator.release(r.id);
    }
  }

  /**
   * Applies a step's logits: advances each request, samples where the chunk reached the end of its
   * known tokens (or accepts proposed tokens and samples after them), and removes finished requests
   * at once. Returns the new tokens in step order. With {@code greedyTokens} (from {@link
   * ModelRunner#forwardGreedy}) those are taken instead.
   */
  List<TokenEvent> complete(
      ScheduledStep step, float[][] logits, int[][] greedyTokens, long nowNanos) {
    List<TokenEvent> events = new ArrayList<>();
    for (int i = 0; i < step.chunks.size(); i++) {
      SequenceChunk chunk = step.chunks.get(i);
      LlmRequest r = step.requests.get(i);
      Proposal proposal = step.proposals.get(i);
      if (proposal.size() > 0) {
        int[] tokens =
            speculator.accept(
                r,
                proposal,
                logits == null ? null : logits[i],
                greedyTokens == null ? null : greedyTokens[i],
                logits == null ? 0 : logits[i].length / chunk.numLogits());
        appendAll(r, tokens, nowNanos, events);
        if (r.finishReason == null) {
          speculator.verified(r, proposal.size(), tokens.length - 1);
        }
        continue;
      }
      if (chunk.wantLogits()) {
        int token =
            greedyTokens != null
                ? greedyTokens[i][0]
                : r.sampler.sample(logits[i], r.tokens, r.numTokens);
        r.numComputed += chunk.tokens().length - 1;
        appendAll(r, new int[] {token}, nowNanos, events);
      } else {
        r.numComputed += chunk.tokens().length;
        kv.cacheFullBlocks(r.id, r.tokens, r.numComputed);
      }
    }
    return events;
  }

  /**
   * Appends a step's new tokens to a request that computed the positions before them: its last
   * known token and each accepted proposal. Stops at a token that finishes the request. Blocks
   * reserved past the computed positions (rejected proposals) go back to the pool; only computed
   * positions of known tokens ever reach the prefix cache.
   */
  private void appendAll(LlmRequest r, int[] tokens, long nowNanos, List<TokenEvent> events) {
    for (int token : tokens) {
      r.numComputed++;
      int index = r.numGenerated();
      FinishReason finish = r.append(token, nowNanos);
      events.add(new TokenEvent(r.id, token, index, finish));
      if (finish != null) {
        r.finishReason = finish;
        running.remove(r);
        kv.cacheFullBlocks(r.id, r.tokens, r.numComputed);
        release(r);
        return;
      }
    }
    kv.cacheFullBlocks(r.id, r.tokens, r.numComputed);
    kv.trim(r.id, r.numComputed);
  }

  /** Drops the requests of a failed step from the running set, freeing their blocks. */
  void abort(ScheduledStep step) {
    for (LlmRequest r : step.requests) {
      running.remove(r);
      release(r);
    }
  }
}
