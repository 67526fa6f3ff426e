#!/usr/bin/env bash
# On the device machine (through .gpu/bin/run.sh, from the app that stage-devrun.sh packed): the
# GPU tests of the CUDA Llama runner, then Kiln vs Hugging Face transformers generate on a random
# Llama-3.2-1B-shaped fp16 model made here, and a logits/tokens cross-check against HF on that
# shape. Everything lands in $OUT (8 files at most).
#   bash .devrun/bench/gpu/llm-gpu.sh [all|tests|bench|spec]
# spec alone: speculative decoding at batch 1 on the 1B shape (plain, n-gram and draft at K=4 and
# LLM_SPEC_MORE_KS, default 6,8, in one SpecBench process), then one K=4 cycle call by call
# (SpecCycleBench), each with the draft's LM head in int8 and as stored (LLM_SPEC_HEADS, default
# draft,off), ~8 min.
# Budget: about 9 minutes in all; each stage has its own timeout so a hang cannot eat the rest.
set -uo pipefail
D=.devrun
PHASE=${1:-all}
OUT=${OUT:-/tmp/llm-gpu-out}
mkdir -p "$OUT"
LOG=$OUT/llm-gpu-run.log
CP="$D/classes:$D/test-classes:$D/lib/*"
# The JavaCPP cuda preset links cuDNN 9 into its JNI glue; stubs stand in where none is installed.
ldconfig -p | grep -q 'libcudnn_cnn.so.9 ' || export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$PWD/$D/stubs
JOPTS=(-Xmx24g -Djava.awt.headless=true -Dorg.bytedeco.javacpp.maxPhysicalBytes=0
  -Dorg.bytedeco.javacpp.maxBytes=0 -Dkiln.shared="$PWD/$D/shared")
MODEL=/tmp/llama-3.2-1b-random
CONC=${LLM_GPU_CONCURRENCY:-1,8,32,64}
stage() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }
PY=(env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3)  # torch brings its own CUDA libraries

stage "device"
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader | tee -a "$LOG"
java -version 2>&1 | head -1 | tee -a "$LOG"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1 | tee -a "$LOG"

if [ "$PHASE" = spec ]; then
  # The CPU report's recipe (bench/cpu-spec.sh) on the 1B shape: the target's layers after the
  # first KEEP add almost nothing (o_proj, down_proj scaled by 1e-3), the draft is those KEEP
  # layers with the same embeddings and norm. Goal: draft K=4 at least 2x plain at acceptance >= 0.8.
  SPEC=/tmp/llama-3.2-1b-spec
  KEEP=${LLM_SPEC_KEEP:-2}
  LLM_SPEC_MORE_KS=${LLM_SPEC_MORE_KS-6,8}
  rm -rf "$SPEC" && mkdir -p "$SPEC"
  stage "make-random-model llama-3.2-1b f16, then its scaled target and $KEEP-layer draft"
  timeout 60 java "${JOPTS[@]}" -cp "$CP" io.kiln.cli.KilnCli make-random-model \
    --shape llama-3.2-1b --dtype f16 --seed 1 -o "$SPEC/base" 2>&1 | tr '\r' '\n' | tail -1 | tee -a "$LOG"
  timeout 240 java "${JOPTS[@]}" -cp "$CP" io.kiln.bench.ShallowDraftModels \
    "$SPEC/base" "$SPEC/target" "$SPEC/draft" "$KEEP" 1e-3 2>&1 | tee -a "$LOG"
  rm -rf "$SPEC/base"
  # Plain, n-gram and draft at each K in one process, the cases taking turns on each prompt
  # (SpecBench: same-slot ratios, greedy tokens checked against plain, each call of a cycle timed
  # alone, the plot against acceptance), then one K=4 cycle call by call (SpecCycleBench); first
  # with the draft's LM head as int8 codes (--int8-lm-head draft: half the bytes of the matrix that
  # dominates a two-layer draft), then as the checkpoint has it (LLM_SPEC_HEADS sets the order).
  KS=4${LLM_SPEC_MORE_KS:+,$LLM_SPEC_MORE_KS}
  LLM_SPEC_HEADS=${LLM_SPEC_HEADS:-draft,off}
  for head in ${LLM_SPEC_HEADS//,/ }; do
    suffix=$([ "$head" = off ] && echo "" || echo "-int8")
    stage "SpecBench cuda, int8 LM head $head: plain, ngram and draft at K=$KS, 4 prompts x 3 rounds, 128 tokens each"
    timeout 300 java "${JOPTS[@]}" -cp "$CP" io.kiln.bench.SpecBench "$SPEC/target" "$SPEC/draft" cuda \
      "$OUT/llm-gpu-spec$suffix" 4 128 "$KS" 3 \
      "kiln make-random-model --shape llama-3.2-1b --dtype f16 --seed 1, then ShallowDraftModels BASE TARGET DRAFT $KEEP 1e-3" \
      "bench/gpu/llm-gpu.sh spec (SpecBench TARGET DRAFT cuda OUT 4 128 $KS 3 $head)" "$head" \
      2>&1 | grep -v '^\[' | tee -a "$LOG"
    echo "SpecBench ($head) exit code ${PIPESTATUS[0]}" | tee -a "$LOG"
    python3 - "$OUT/llm-gpu-spec$suffix.json" <<'PY' 2>&1 | tee -a "$LOG"
import json, sys
report = json.load(open(sys.argv[1]))
head = report.get("int8_lm_head", "off")
row = next(r for r in report["rows"] if r["decoding"] == "draft K=4")
speedup, acc = row["speedup_vs_plain"], row["acceptance_rate"] or 0.0
verdict = "MEETS" if speedup >= 2 and acc >= 0.8 else "MISSES"
print(f"draft K=4 (int8 LM head: {head}): {speedup:.2f}x at acceptance {acc:.3f} (modeled {row['modeled_speedup']:.2f}x): {verdict} the goal of 2x at acceptance >= 0.8")
print(f"greedy outputs (int8 LM head: {head}): {report.get('greedy_outputs')}")
PY
  done
  for head in ${LLM_SPEC_HEADS//,/ }; do
    suffix=$([ "$head" = off ] && echo "" || echo "-int8")
    stage "one cycle call by call (SpecCycleBench, K=4, context 128, int8 LM head $head)"
    timeout 120 java "${JOPTS[@]}" -cp "$CP" io.kiln.bench.gpu.SpecCycleBench "$SPEC/target" "$SPEC/draft" \
      cuda 4 128 "$OUT/llm-gpu-spec-cycle$suffix" \
      "bench/gpu/llm-gpu.sh spec (SpecCycleBench TARGET DRAFT cuda 4 128 $head)" "$head" \
      2>&1 | grep -v '^\[' | tee -a "$LOG"
  done
  stage "done"
  exit 0
fi

if [ "$PHASE" != bench ]; then
  stage "gpu tests (kernels, tiny Llama exactness, tiny pool, graphs vs eager, memory)"
  timeout 150 java "${JOPTS[@]}" -cp "$CP" io.kiln.gpu.GpuTestMain \
    io.kiln.execution.llm.gpu io.kiln.cli > "$OUT/llm-gpu-tests.log" 2>&1
  echo "gpu tests exit code $?" | tee -a "$LOG"
  grep -E '^\[gpu-test\]' "$OUT/llm-gpu-tests.log" | tail -40 | tee -a "$LOG"
fi
[ "$PHASE" = tests ] && exit 0

stage "make-random-model llama-3.2-1b f16"
timeout 45 java "${JOPTS[@]}" -cp "$CP" io.kiln.cli.KilnCli make-random-model \
  --shape llama-3.2-1b --dtype f16 --seed 1 -o "$MODEL" 2>&1 | tr '\r' '\n' | tail -2 | tee -a "$LOG"

# kiln_bench SECONDS JSON CONCURRENCY [FLAGS...]: one bench-llm run with the batch-1 roofline.
kiln_bench() {
  local seconds=$1 json=$2 conc=$3; shift 3
  stage "kiln bench-llm --device cuda $*, concurrency $conc"
  timeout "$seconds" java "${JOPTS[@]}" -cp "$CP" io.kiln.cli.KilnCli bench-llm --model "$MODEL" \
    --device cuda --dtype f16 "$@" --concurrency "$conc" --prompt-len 128 --gen-len 128 \
    --max-num-seqs 64 --max-batched-tokens 2048 --roofline \
    --json "$OUT/$json" 2>&1 | tr '\r' '\n' | grep -v '^\[#* *\] ' | tee -a "$LOG"
  echo "kiln ($*) exit code ${PIPESTATUS[0]}" | tee -a "$LOG"
}

# The launch paths, each spelled out in full so that a run does not depend on the defaults.
CUBLAS=(--no-skinny-gemm --no-programmatic-launch --no-fused-norms)
SKINNY_PDL=(--skinny-gemm --programmatic-launch --no-fused-norms)
FUSED=(--skinny-gemm --programmatic-launch --fused-norms)

if [ -n "${LLM_ROOFLINE_ONLY:-}" ]; then  # batch-1 roofline with its stage breakdown, per path
  kiln_bench 80 llm-gpu-roofline-cublas.json 1 "${CUBLAS[@]}"
  kiln_bench 80 llm-gpu-roofline-skinny-pdl.json 1 "${SKINNY_PDL[@]}"
  kiln_bench 80 llm-gpu-roofline-fused.json 1 "${FUSED[@]}"
  exit 0
fi

kiln_bench 150 llm-gpu-kiln.json "$CONC"  # the default path
kiln_bench 150 llm-gpu-kiln-cublas.json "$CONC" "${CUBLAS[@]}"
kiln_bench 120 llm-gpu-kiln-skinny-pdl.json 1,8 "${SKINNY_PDL[@]}"

stage "hugging face generate (sdpa, fp16; eager, and static cache + torch.compile if asked)"
# LLM_GPU_HF_COMPILE=1 adds HF's static cache + torch.compile pass (minutes of compiling).
HF_COMPILE=(); HF_TIMEOUT=120
[ -n "${LLM_GPU_HF_COMPILE:-}" ] && { HF_COMPILE=(--compile); HF_TIMEOUT=420; }
timeout $HF_TIMEOUT "${PY[@]}" $D/bench/gpu/hf_generate_peer.py --model "$MODEL" "${HF_COMPILE[@]}" \
  --concurrency "$CONC" --prompt-len 128 --gen-len 128 --out "$OUT/llm-gpu-hf.json" 2>&1 \
  | grep -v -i warn | tee -a "$LOG"

stage "compiled PyTorch peer: static KV cache, fused weights, one CUDA graph per decode step"
# Checks its own first-step logits against transformers before it times anything.
timeout 300 "${PY[@]}" $D/bench/gpu/torch_llama_peer.py --model "$MODEL" --compile \
  --batches 1,32,64 --prompt-len 128 --gen-len 128 --out "$OUT/llm-gpu-torch.json" 2>&1 \
  | grep -v -i warn | tee -a "$LOG"

stage "cross-check on the 1B shape: Kiln fp16 prompt logits and greedy tokens vs HF"
PROMPT=$(python3 -c 'import random; r = random.Random(5); print(",".join(str(r.randrange(128256)) for _ in range(64)))')
timeout 45 java "${JOPTS[@]}" -cp "$CP" io.kiln.execution.llm.gpu.LogitsDump "$MODEL" f16 \
  "$PROMPT" /tmp/kiln-logits.bin 16 2>&1 | tee -a "$LOG"
timeout 60 "${PY[@]}" $D/bench/gpu/hf_logits_check.py --model "$MODEL" \
  --prompt "$PROMPT" --kiln /tmp/kiln-logits.bin --out /tmp/llm-gpu-crosscheck.json 2>&1 \
  | grep -v -i warn | tee -a "$LOG"

stage "report"
"${PY[@]}" $D/bench/gpu/llm_gpu_report.py --kiln "$OUT/llm-gpu-kiln.json" --hf "$OUT/llm-gpu-hf.json" \
  --kiln-variant "cuBLAS=$OUT/llm-gpu-kiln-cublas.json" \
  --kiln-variant "skinny GEMM + programmatic launch, separate norms=$OUT/llm-gpu-kiln-skinny-pdl.json" \
  --tests "$OUT/llm-gpu-tests.log" --crosscheck /tmp/llm-gpu-crosscheck.json \
  --out "$OUT/llm-gpu-report" 2>&1 | tee -a "$LOG"
stage "done"
ls -la "$OUT" | tee -a "$LOG"
