package io.kiln.execution.llm.gpu;

import io.kiln.cuda.Cuda;
import org.bytedeco.cuda.cudart.CUstream_st;

/**
 * The forward pass's dense products, each on cuBLAS or Kiln's skinny GEMM by the step's row count
 * ({@link #skinny}): the projections (with their bias), the products that add into the fp32
 * residual stream, and the LM head.
 */
final class DenseProducts {
  private final boolean skinnyGemm;
  private final StorageType storage;
  private final Kernels kernels;
  private final Cublas blas;
  private final CUstream_st stream;

  DenseProducts(GpuRunnerOptions options, Kernels kernels, Cublas blas, CUstream_st stream) {
    this.skinnyGemm = options.skinnyGemm();
    this.storage = options.storage();
    this.kernels = kernels;
    this.blas = blas;
    this.stream = stream;
  }

  /**
   * Whether a step of {@code tokens} rows runs its dense layers through the skinny GEMM: one-row
   * steps, and with fp16 storage steps of up to 8 rows (verifications, a draft's first round) on
   * its tensor-core build. Its FMA builds for 2 to 8 rows fit half the blocks on a multiprocessor
   * and measured slower than cuBLAS on an H200 (bench/results/llm-gpu-2026-11-29-launch-paths.md),
   * so fp32 storage keeps cuBLAS there.
   */
  boolean skinny(int tokens) {
    return skinnyGemm
        && (tokens == 1 || (storage == StorageType.F16 && SkinnyGemm.handles(tokens)));
  }

  /** out[rows, outDim] = in[rows, inDim] times the weight (+ bias, where the model has one). */
  void project(
      DeviceBuffer out,
      DeviceBuffer in,
      DeviceBuffer weight,
      DeviceBuffer bias,
      int rows,
      int inDim,
      int outDim) {
    if (skinny(rows)) {
      int sms = Cuda.multiprocessors();
      if (bias != null) {
        kernels.skinnyGemmBias(
            stream,
            sms,
            rows,
            inDim,
            outDim,
            out.address(),
            in.address(),
            weight.address(),
            bias.address());
      } else {
        kernels.skinnyGemm(
            stream, sms, rows, inDim, outDim, out.address(), in.address(), weight.address());
      }
      return;
    }
    blas.linear(
        out.address(),
        storage.cudaType,
        in.address(),
        weight.address(),
        storage.cudaType,
        rows,
        inDim,
        outDim);
    if (bias != null) {
      kernels.addBias(stream, out.address(), bias.address(), rows, outDim);
    }
  }

  /**
   * residual[rows, outDim] += in[rows, inDim] times the weight (rounded to the storage type first),
   * one skinny kernel.
   */
  void addInto(
      DeviceBuffer residual,
      DeviceBuffer in,
      DeviceBuffer weight,
      int rows,
      int inDim,
      int outDim) {
    kernels.skinnyGemmResidual(
        stream,
        Cuda.multiprocessors(),
        rows,
        inDim,
        outDim,
        residual.address(),
        in.address(),
        weight.address());
  }

  /**
   * The language-model head: fp32 logits[rows, vocab] of the normed rows; the skinny kernels also
   * leave each row's greedy key at {@code greedyKeys}. Steps of up to 8 rows read the int8 copy
   * where there is one ({@code lmHeadInt8}, else null).
   */
  void logits(
      DeviceBuffer logits,
      DeviceBuffer normed,
      DeviceBuffer lmHead,
      Int8Matrix lmHeadInt8,
      int rows,
      int hidden,
      int vocab,
      long greedyKeys) {
    if (lmHeadInt8 != null && skinny(rows)) {
      kernels.skinnyGemmLogitsInt8(
          stream,
          Cuda.multiprocessors(),
          rows,
          hidden,
          vocab,
          logits.address(),
          normed.address(),
          lmHeadInt8.codes().address(),
          lmHeadInt8.scales().address(),
          greedyKeys);
    } else if (skinny(rows)) {
      kernels.skinnyGemmLogits(
          stream,
          Cuda.multiprocessors(),
          rows,
          hidden,
          vocab,
          logits.address(),
          normed.address(),
          lmHead.address(),
          greedyKeys);
    } else {
      blas.linear(
          logits.address(),
          StorageType.F32.cudaType,
          normed.address(),
          lmHead.address(),
          storage.cudaType,
          rows,
          hidden,
          vocab);
    }
  }
}
