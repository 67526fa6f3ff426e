package io.kiln.execution.llm.gpu;

/** The runner's kernels for one storage type and head size, with their argument signatures. */
public final class Kernels {
  final Kernel embedding;
  final Kernel rmsnorm;
  final Kernel addRmsnorm;
  final Kernel ropeKvWrite;
  final Kernel addBias;
  final Kernel rope;
  final Kernel kvWrite;
  public final Kernel siluMul;
  final Kernel residualAdd;
  final Kernel attention;
  final Kernel combine;
  final Kernel castToHalf;
  final Kernel castToFloat;
  final Kernel gatherRows;
  final Kernel argmax;
  final Kernel sample;
  public final SkinnyGemm.Variants skinnyGemm;
  final SkinnyGemm.Variants skinnyGemmBias;
  final SkinnyGemm.Variants skinnyGemmToFloat;
  public final SkinnyGemm.Variants skinnyGemmSilu;
  final SkinnyGemm.Variants skinnyGemmRopeKv;
  final SkinnyGemm.Variants skinnyGemmResidual;
  final SkinnyGemm.Variants skinnyGemmLogits;
  final SkinnyGemm.Variants skinnyGemmSiluNormed;
  final SkinnyGemm.Variants skinnyGemmRopeKvNormed;

  Kernels(CudaModule m, StorageType st, int headDim) {
    this(m, st, headDim, false);
  }

  /**
   * @param overlap launch every kernel with programmatic dependent launch (see {@link
   *     Kernel#overlapPrevious})
   */
  public Kernels(CudaModule m, StorageType st, int headDim, boolean overlap) {
    String s = "_" + st.suffix;
    embedding = m.kernel("embedding_gather" + s, "pppii");
    rmsnorm = m.kernel("rmsnorm" + s, "pppif");
    addRmsnorm = m.kernel("add_rmsnorm" + s, "ppppif");
    ropeKvWrite = m.kernel("rope_kv_write" + s, "pppppppiiiii");
    addBias = m.kernel("add_bias" + s, "ppii");
    rope = m.kernel("rope" + s, "ppppiiiii");
    kvWrite = m.kernel("kv_write" + s, "ppppiiiii");
    siluMul = m.kernel("silu_mul" + s, "ppii");
    residualAdd = m.kernel("residual_add" + s, "ppl");
    attention = m.kernel("paged_attention" + s + "_hd" + headDim, "pipppippiiifiipppii");
    combine = m.kernel("attention_combine" + s, "pppiiii");
    castToHalf = m.kernel("cast_f32_to_f16", "ppl");
    castToFloat = m.kernel("cast_f16_to_f32", "ppl");
    gatherRows = m.kernel("gather_rows_f32", "pppii");
    argmax = m.kernel("argmax_f32", "pip");
    sample = m.kernel("sample_f32", "pipppppp");
    skinnyGemm = SkinnyGemm.Variants.of(m, "skinny_gemm", st, "pppiiii");
    skinnyGemmBias = SkinnyGemm.Variants.of(m, "skinny_gemm_bias", st, "ppppiiii");
    skinnyGemmToFloat = SkinnyGemm.Variants.of(m, "skinny_gemm_to_f32", st, "pppiiii");
    skinnyGemmSilu = SkinnyGemm.Variants.of(m, "skinny_gemm_silu", st, "pppiiii");
    skinnyGemmRopeKv = SkinnyGemm.Variants.of(m, "skinny_gemm_rope_kv", st, "pppiiiippppppiii");
    skinnyGemmResidual = SkinnyGemm.Variants.of(m, "skinny_gemm_residual", st, "pppiiii");
    skinnyGemmLogits = SkinnyGemm.Variants.of(m, "skinny_gemm_logits", st, "pppiiiip");
    skinnyGemmSiluNormed = SkinnyGemm.Variants.of(m, "skinny_gemm_silu_normed", st, "pppiiiif");
    skinnyGemmRopeKvNormed =
        SkinnyGemm.Variants.of(m, "skinny_gemm_rope_kv_normed", st, "pppiiiippppppiiif");
    for (Kernel k :
        new Kernel[] {
          embedding,
          rmsnorm,
          addRmsnorm,
          ropeKvWrite,
          addBias,
          rope,
          kvWrite,
          siluMul,
          residualAdd,
          attention,
          combine,
          castToHalf,
          castToFloat,
          gatherRows,
          argmax,
          sample,
          skinnyGemm.rows(),
          skinnyGemm.oneRow(),
          skinnyGemmBias.rows(),
          skinnyGemmBias.oneRow(),
          skinnyGemmToFloat.rows(),
          skinnyGemmToFloat.oneRow(),
          skinnyGemmSilu.rows(),
          skinnyGemmSilu.oneRow(),
          skinnyGemmRopeKv.rows(),
          skinnyGemmRopeKv.oneRow(),
          skinnyGemmResidual.rows(),
          skinnyGemmResidual.oneRow(),
          skinnyGemmLogits.rows(),
          skinnyGemmLogits.oneRow(),
          skinnyGemmSiluNormed.rows(),
          skinnyGemmSiluNormed.oneRow(),
          skinnyGemmRopeKvNormed.rows(),
          skinnyGemmRopeKvNormed.oneRow()
        }) {
      k.overlapPrevious(overlap);
    }
  }
}
