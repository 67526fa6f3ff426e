package io.kiln.execution.llm;

import io.kiln.ModelException;
import io.kiln.execution.kv.KvBlockManager;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A smaller model with the target's vocabulary proposes tokens one draft step at a time, batched
 * across requests. Its K/V live in blocks of its own pool, handed out by its own block manager (no
 * prefix caching: a draft block may hold unverified tokens). After verification only the positions
 * the target accepted stay computed; the next proposal recomputes from there. A prompt goes through
 * the draft in the step in which the target computes it. Up to K known tokens still missing from
 * the draft's pool (after a fully accepted proposal: the last proposed token) ride with the first
 * draft round instead of a step of their own.
 */
final class DraftModelProposer implements Proposer {
  private final ModelRunner draft;
  private final KvBlockManager kv;
  private final int maxBatchedTokens;
  private final int maxFolded;
  private final Map<Long, Integer> computed = new HashMap<>(); // draft positions with valid K/V

  /**
   * @param maxBatchedTokens most tokens per draft step (a long catch-up is split)
   * @param maxFolded most missing known tokens that ride with the first draft round (K)
   * @throws ModelException when the draft's vocabulary differs from the target's
   */
  DraftModelProposer(ModelRunner draft, ModelSpec target, int maxBatchedTokens, int maxFolded) {
    ModelSpec spec = draft.spec();
    if (spec.vocabSize() != target.vocabSize()) {
      throw new ModelException(
          "the draft model's vocabulary has "
              + spec.vocabSize()
              + " tokens and the target's "
              + target.vocabSize()
              + "; speculation needs the same vocabulary");
    }
    this.draft = draft;
    this.kv = new KvBlockManager(draft.kvPool().numBlocks(), draft.kvPool().blockSize(), false);
    this.maxBatchedTokens = maxBatchedTokens;
    this.maxFolded = maxFolded;
  }

  @Override
  public int kvBlocksUsed() {
    return kv.numUsedBlocks();
  }

  @Override
  public List<Proposal> propose(List<LlmRequest> requests, int[] limits) {
    List<Proposal> proposals = new ArrayList<>(requests.size());
    List<Drafting> active = new ArrayList<>();
    for (int i = 0; i < requests.size(); i++) {
      LlmRequest r = requests.get(i);
      proposals.add(Proposal.NONE);
      int limit = Math.min(limits[i], draft.spec().maxPositions() - r.numTokens + 1);
      // The draft computes up to the second-last proposed token's position.
      if (limit > 0 && kv.allocateSlots(r.id, null, r.numTokens + limit - 1)) {
        active.add(new Drafting(i, r, limit));
      }
    }
    catchUp(active);
    while (!active.isEmpty()) {
      List<SequenceChunk> chunks = new ArrayList<>();
      for (Drafting d : active) {
        chunks.add(
            d.nextChunk(kv.blockTable(d.request.id), computed.getOrDefault(d.request.id, 0)));
      }
      // Greedy drafts need only each row's argmax: where the runner picks it on the device, the
      // vocabulary-wide logits neither travel nor get scanned here.
      int[][] greedy = allGreedy(active) ? draft.forwardGreedy(chunks) : null;
      float[][] logits = greedy == null ? draft.forward(chunks) : null;
      List<Drafting> next = new ArrayList<>();
      for (int j = 0; j < active.size(); j++) {
        Drafting d = active.get(j);
        int fed = chunks.get(j).tokens().length;
        computed.merge(d.request.id, fed, Integer::sum);
        boolean more = greedy != null ? d.addToken(greedy[j][0]) : d.add(logits[j]);
        if (more && d.size < d.limit) {
          next.add(d);
        } else {
          proposals.set(d.index, d.proposal());
        }
      }
      active = next;
    }
    return proposals;
  }

  private static boolean allGreedy(List<Drafting> active) {
    for (Drafting d : active) {
      if (!d.request.params.isPlainArgmax()) {
        return false;
      }
    }
    return true;
  }

  /**
   * Computes each request's known tokens but its last into the draft's pool, except up to {@code
   * maxFolded} of them that the first draft round feeds along with the last, within its own budget
   * of {@code maxBatchedTokens}.
   */
  private void catchUp(List<Drafting> active) {
    int foldBudget = maxBatchedTokens - active.size();
    List<LlmRequest> requests = new ArrayList<>(active.size());
    int[] ends = new int[active.size()];
    for (int i = 0; i < ends.length; i++) {
      LlmRequest r = active.get(i).request;
      int missing = r.numTokens - 1 - computed.getOrDefault(r.id, 0);
      int folded = Math.max(0, Math.min(Math.min(missing, maxFolded), foldBudget));
      foldBudget -= folded;
      requests.add(r);
      ends[i] = r.numTokens - 1 - folded;
    }
    computeUpTo(requests, ends);
  }

  /**
   * The draft computes a prompt in the step in which the target does, so that its prompt pass does
   * not delay the request's first proposal (and its first tokens after the prompt).
   */
  @Override
  public void prefill(List<LlmRequest> requests, int[] ends) {
    List<LlmRequest> ready = new ArrayList<>(requests.size());
    int[] readyEnds = new int[requests.size()];
    for (int i = 0; i < ends.length; i++) {
      LlmRequest r = requests.get(i);
      // A prompt longer than the draft's context is never drafted for (see propose).
      if (r.numTokens <= draft.spec().maxPositions()
          && ends[i] > computed.getOrDefault(r.id, 0)
          && kv.allocateSlots(r.id, null, ends[i])) {
        readyEnds[ready.size()] = ends[i];
        ready.add(r);
      }
    }
    computeUpTo(ready, readyEnds);
  }

  /**
   * Computes each request's known tokens from where its draft K/V ends to {@code ends[i]}, no
   * logits, in draft steps of at most {@code maxBatchedTokens}.
   */
  private void computeUpTo(List<LlmRequest> requests, int[] ends) {
    while (true) {
      List<SequenceChunk> chunks = new ArrayList<>();
      int budget = maxBatchedTokens;
      for (int i = 0; i < requests.size(); i++) {
        LlmRequest r = requests.get(i);
        int from = computed.getOrDefault(r.id, 0);
        int count = Math.min(ends[i] - from, budget);
        if (count > 0) {
          int[] tokens = Arrays.copyOfRange(r.tokens, from, from + count);
          chunks.add(new SequenceChunk(r.id, tokens, from, kv.blockTable(r.id), 0));
          computed.put(r.id, from + count);
          budget -= count;
        }
      }
      if (chunks.isEmpty()) {
        return;
      }
      draft.forward(chunks);
    }
  }

  @Override
  public void verified(LlmRequest request, int proposed, int accepted) {
    Integer done = computed.get(request.id);
    if (done != null) {
      // Valid draft K/V: the known tokens before this step's proposals, then the accepted ones.
      int before = request.numTokens - accepted - 1;
      computed.put(request.id, Math.min(done, before + accepted));
    }
  }

  @Override
  public void release(long requestId) {
    computed.remove(requestId);
    kv.free(requestId);
  }

  @Override
  public void close() {
    for (Long id : List.copyOf(computed.keySet())) {
      release(id);
    }
  }

  /** One request's proposal as it grows. */
  private final class Drafting {
    final int index;
    final LlmRequest request;
    final int limit;
    final int[] tokens;
    final double[][] probabilities;
    final int[] history;
    int size;

    Drafting(int index, LlmRequest request, int limit) {
      this.index = index;
      this.request = request;
      this.limit = limit;
      this.tokens = new int[limit];
      this.probabilities = request.params.isGreedy() ? null : new double[limit][];
      this.history = Arrays.copyOf(request.tokens, request.numTokens + limit);
    }

    /**
     * The known tokens from {@code computed} (the first round: those the draft's pool still lacks,
     * then the last known one), then each proposed token but the last, one a round.
     */
    SequenceChunk nextChunk(int[] blockTable, int computed) {
      int next = request.numTokens + size;
      int[] fed = Arrays.copyOfRange(history, computed, next);
      return new SequenceChunk(request.id, fed, computed, blockTable, 1);
    }

    /** Draws the next token from the draft's logits; always true (the draft may go on). */
    boolean add(float[] logits) {
      int length = request.numTokens + size;
      if (probabilities == null) {
        return addToken(request.sampler.sample(logits, history, length));
      }
      probabilities[size] = request.sampler.distribution(logits, history, length);
      return addToken(request.sampler.draw(probabilities[size]));
    }

    /**
     * Appends the draft's greedy token; false, proposing nothing more, where the draft's logits
     * were not finite.
     */
    boolean addToken(int token) {
      if (token == ModelRunner.NON_FINITE) {
        return false;
      }
      history[request.numTokens + size] = token;
      tokens[size++] = token;
      return true;
    }

    Proposal proposal() {
      return size == limit
          ? new Proposal(tokens, probabilities)
          : new Proposal(Arrays.copyOf(tokens, size), probabilities);
    }
  }
}
