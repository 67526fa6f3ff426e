package io.kiln.execution.llm;

import io.kiln.InvalidInputException;
import io.kiln.execution.kv.KvBlockManager;
import io.kiln.model.llama.WeightQuantizer;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * How {@link LlmRunners#open} sets up a model runner. Immutable; change one setting with its
 * wither. Settings marked CUDA are ignored by the CPU runner, which stores and computes float32.
 *
 * @param kvBlocks KV blocks sequences can use, not counting the pool's null block; 0 sizes the pool
 *     from free memory ({@code kvUtilization} of it)
 * @param blockSize positions per KV block
 * @param threads CPU threads, 0 for every available core
 * @param storage CUDA: element type of weights, activations and the KV cache (math is fp32)
 * @param kvUtilization share of the memory left after weights that a pool sized from free memory
 *     takes, in (0, 1]
 * @param maxNumSeqs most sequences in one step
 * @param maxBatchedTokens most tokens in one step
 * @param maxModelLen longest sequence served, 0 for min(model context, 4096)
 * @param cudaGraphs CUDA: replay decode steps as captured graphs (else launch eagerly)
 * @param skinnyGemm CUDA: steps of up to 8 rows through Kiln's skinny GEMM instead of cuBLAS
 * @param programmaticLaunch CUDA: programmatic dependent launch of Kiln's kernels (sm_90 and later)
 * @param fusedNorms CUDA: fold RMSNorm weights into the products that read the norms
 * @param quantization CPU: store the projection weights in 8 bits on load (computing with their
 *     dequantized values, as an 8-bit checkpoint would be read); null keeps them as they are
 * @param int8LmHead CUDA: which runners also keep the LM head as int8 codes (a scale per row) and
 *     use them for steps of up to 8 logits rows, reading half the bytes of fp16 storage (draft
 *     models by default)
 * @param speculativeTokens CUDA: steps of up to this + 1 positions per sequence replay captured
 *     graphs: K for the target of an engine that speculates K tokens (its verification steps), 1
 *     for a draft model (its first round feeds the last proposal and the target's token); 0 for
 *     none. {@link #forTarget} and {@link #forDraft} set it.
 */
public record RunnerOptions(
    int kvBlocks,
    int blockSize,
    int threads,
    Storage storage,
    double kvUtilization,
    int maxNumSeqs,
    int maxBatchedTokens,
    int maxModelLen,
    boolean cudaGraphs,
    boolean skinnyGemm,
    boolean programmaticLaunch,
    boolean fusedNorms,
    WeightQuantizer.Format quantization,
    Int8LmHead int8LmHead,
    int speculativeTokens) {
  /** More threads than this is a typo, not a machine. */
  public static final int MAX_THREADS = 4096;

  /** Used when {@code maxModelLen} is 0 and the model's context is longer. */
  public static final int DEFAULT_MAX_MODEL_LEN = 4096;

  /** Element type a CUDA runner stores weights, activations and the KV cache in. */
  public enum Storage {
    F16,
    F32;

    /** {@code f16} or {@code f32} (also {@code fp16}, {@code float16}, ...). */
    public static Storage parse(String text) {
      String name = text == null ? "" : text.trim().toLowerCase(Locale.ROOT);
      return switch (name) {
        case "f16", "fp16", "float16" -> F16;
        case "f32", "fp32", "float32" -> F32;
        default ->
            throw new InvalidInputException("storage must be f16 or f32, got '" + text + "'");
      };
    }

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public RunnerOptions {
    if (kvBlocks < 0) {
      throw new InvalidInputException(
          "kv blocks must be >= 0 (0 sizes from memory), got " + kvBlocks);
    }
    if (blockSize < 1) {
      throw new InvalidInputException("block size must be >= 1, got " + blockSize);
    }
    if (threads < 0 || threads > MAX_THREADS) {
      throw new InvalidInputException(
          "threads must be 0 (all cores) to " + MAX_THREADS + ", got " + threads);
    }
    if (storage == null) {
      throw new InvalidInputException("storage type missing (f16 or f32)");
    }
    if (int8LmHead == null) {
      throw new InvalidInputException("int8 LM head setting missing (off, draft or on)");
    }
    if (!(kvUtilization > 0 && kvUtilization <= 1)) {
      throw new InvalidInputException("kv utilization must be in (0, 1], got " + kvUtilization);
    }
    if (maxNumSeqs < 1) {
      throw new InvalidInputException("max num seqs must be >= 1, got " + maxNumSeqs);
    }
    SpeculativeConfig.checkVerifiedTokens(speculativeTokens);
    if (maxBatchedTokens < 1) {
      throw new InvalidInputException("max batched tokens must be >= 1, got " + maxBatchedTokens);
    }
    if (maxModelLen < 0) {
      throw new InvalidInputException(
          "max model len must be >= 0 (0 for min(context, 4096)), got " + maxModelLen);
    }
  }

  /**
   * Where a CUDA runner keeps an int8 copy of its LM head for steps of up to 8 logits rows (fp16
   * storage). The codes move the logits by about the int8 step of each row: harmless for a draft
   * model, whose proposals the target verifies, but a change of the model's outputs elsewhere.
   */
  public enum Int8LmHead {
    /** No runner. */
    OFF,
    /** Draft models ({@link RunnerOptions#forDraft}). */
    DRAFT,
    /** Every runner opened with these options. */
    ON;

    public static Int8LmHead parse(String text) {
      return switch (text == null ? "" : text.trim().toLowerCase(Locale.ROOT)) {
        case "off" -> OFF;
        case "draft" -> DRAFT;
        case "on" -> ON;
        default ->
            throw new InvalidInputException("int8 LM head must be off, draft or on, got " + text);
      };
    }

    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * Pool from free memory, 16-position blocks, all cores, f16 storage, every CUDA fast path and an
   * int8 LM head for draft models.
   */
  public static RunnerOptions defaults() {
    return new RunnerOptions(
        0,
        KvBlockManager.DEFAULT_BLOCK_SIZE,
        0,
        Storage.F16,
        0.90,
        64,
        512,
        0,
        true,
        true,
        true,
        true,
        null,
        Int8LmHead.DRAFT,
        0);
  }

  /** The longest sequence served for a model of {@code contextLength} positions. */
  public int maxModelLenFor(int contextLength) {
    return maxModelLen > 0
        ? Math.min(maxModelLen, contextLength)
        : Math.min(contextLength, DEFAULT_MAX_MODEL_LEN);
  }

  /** {@code threads}, or every available core when it is 0. */
  public int resolvedThreads() {
    return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
  }

  public RunnerOptions withKvBlocks(int usableBlocks) {
    return with(copy -> copy.kvBlocks = usableBlocks);
  }

  public RunnerOptions withBlockSize(int size) {
    return with(copy -> copy.blockSize = size);
  }

  public RunnerOptions withThreads(int count) {
    return with(copy -> copy.threads = count);
  }

  public RunnerOptions withStorage(Storage type) {
    return with(copy -> copy.storage = type);
  }

  public RunnerOptions withKvUtilization(double share) {
    return with(copy -> copy.kvUtilization = share);
  }

  public RunnerOptions withMaxNumSeqs(int count) {
    return with(copy -> copy.maxNumSeqs = count);
  }

  public RunnerOptions withMaxBatchedTokens(int count) {
    return with(copy -> copy.maxBatchedTokens = count);
  }

  public RunnerOptions withMaxModelLen(int length) {
    return with(copy -> copy.maxModelLen = length);
  }

  public RunnerOptions withCudaGraphs(boolean on) {
    return with(copy -> copy.cudaGraphs = on);
  }

  public RunnerOptions withSkinnyGemm(boolean on) {
    return with(copy -> copy.skinnyGemm = on);
  }

  public RunnerOptions withProgrammaticLaunch(boolean on) {
    return with(copy -> copy.programmaticLaunch = on);
  }

  public RunnerOptions withFusedNorms(boolean on) {
    return with(copy -> copy.fusedNorms = on);
  }

  /** Projection weights in 8 bits on load; null for none. */
  public RunnerOptions withQuantization(WeightQuantizer.Format format) {
    return with(copy -> copy.quantization = format);
  }

  /** Which runners keep an int8 copy of the LM head. */
  public RunnerOptions withInt8LmHead(Int8LmHead where) {
    return with(copy -> copy.int8LmHead = where);
  }

  /** Graphs for steps of up to {@code tokens} + 1 positions per sequence; 0 for none. */
  public RunnerOptions withSpeculativeTokens(int tokens) {
    return with(copy -> copy.speculativeTokens = tokens);
  }

  /**
   * These options for the target of an engine speculating as {@code config} says (or not: null).
   */
  public RunnerOptions forTarget(SpeculativeConfig config) {
    return withSpeculativeTokens(config == null ? 0 : config.numTokens());
  }

  /**
   * These options for a draft model: after a fully accepted proposal its first round feeds two
   * positions (the last proposed token and the target's), which a CUDA draft then replays from a
   * graph like its one-position rounds. {@link Int8LmHead#DRAFT} turns the int8 LM head on (with
   * f16 storage).
   */
  public RunnerOptions forDraft() {
    return with(
        copy -> {
          copy.speculativeTokens = 1;
          // The int8 head reads fp16 activations; an f32 draft keeps its head as it is.
          if (copy.int8LmHead == Int8LmHead.DRAFT && copy.storage == Storage.F16) {
            copy.int8LmHead = Int8LmHead.ON;
          }
        });
  }

  private RunnerOptions with(Consumer<Copy> change) {
    Copy copy = new Copy(this);
    change.accept(copy);
    return copy.build();
  }

  /** A mutable copy, so that each wither names only the setting it changes. */
  private static final class Copy {
    int kvBlocks;
    int blockSize;
    int threads;
    Storage storage;
    double kvUtilization;
    int maxNumSeqs;
    int maxBatchedTokens;
    int maxModelLen;
    boolean cudaGraphs;
    boolean skinnyGemm;
    boolean programmaticLaunch;
    boolean fusedNorms;
    WeightQuantizer.Format quantization;
    Int8LmHead int8LmHead;
    int speculativeTokens;

    Copy(RunnerOptions options) {
      kvBlocks = options.kvBlocks;
      blockSize = options.blockSize;
      threads = options.threads;
      storage = options.storage;
      kvUtilization = options.kvUtilization;
      maxNumSeqs = options.maxNumSeqs;
      maxBatchedTokens = options.maxBatchedTokens;
      maxModelLen = options.maxModelLen;
      cudaGraphs = options.cudaGraphs;
      skinnyGemm = options.skinnyGemm;
      programmaticLaunch = options.programmaticLaunch;
      fusedNorms = options.fusedNorms;
      quantization = options.quantization;
      int8LmHead = options.int8LmHead;
      speculativeTokens = options.speculativeTokens;
    }

    RunnerOptions build() {
      return new RunnerOptions(
          kvBlocks,
          blockSize,
          threads,
          storage,
          kvUtilization,
          maxNumSeqs,
          maxBatchedTokens,
          maxModelLen,
          cudaGraphs,
          skinnyGemm,
          programmaticLaunch,
          fusedNorms,
          quantization,
          int8LmHead,
          speculativeTokens);
    }
  }
}
