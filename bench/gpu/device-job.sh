#!/usr/bin/env bash
# On the device machine, from the staged app (through .gpu/bin/run.sh): every device measurement
# in one background job, most needed first, so that a job cut short still leaves the important
# figures. Results gather in /tmp/kb/out; poll.sh copies them to $OUT.
#   bash .gpu/bin/run.sh bash .devrun/bench/gpu/device-job.sh start [PHASES]
#   bash .gpu/bin/run.sh bash .devrun/bench/gpu/device-job.sh poll [SECONDS]   (returns at the job's end)
# PHASES (default: tests,llm,segments,trt), comma-separated:
#   tests     every gpu-tagged test (TensorRT and LLM), ~100 s
#   llm       the CUDA Llama runner vs HF generate, cuBLAS and skinny GEMM (llm-gpu.sh bench), ~3 min
#   segments  the LLM dense segments, cuBLAS / skinny GEMM / TensorRT, ~3 min; SEGMENT_TOKENS (default
#             1,8,64,512; e.g. 1,5,8 for speculative verification) picks the step sizes
#   trt       TensorRT BERT-base: peers, quantize, variants, report, ~18 min
#   kernels   the kernel tests alone (GpuKernelsTest, GpuInt8LmHeadTest), ~50 s
#   runner    the CUDA Llama runner's tests alone (GpuLlamaRunnerTest), ~60 s
#   layers    the kernels TensorRT picks for FP16 and INT8 placements (LAYERS_PLACEMENTS, default ws;
#             batches 8 and 32, detailed layer information beside each plan), ~4 min + ~1 min each
#   roofline  batch-1 roofline of the CUDA runner with its stage breakdown: cuBLAS, skinny with
#             programmatic launch, with the norms fused into the products, ~1 min
#   serve     kiln serve --device cuda on the 1B shape, bench-serve at c1/32/128 against
#             in-process bench-llm (serve-gpu.sh), ~3 min
#   concurrency  16 threads calling infer on TensorRT FP16 MiniLM: default vs merged vs direct, ~2 min
#   embed     Kiln TensorRT FP16 vs sentence-transformers encode fp16 on all-MiniLM-L6-v2,
#             batches 32/64/128, goal >= 2x (embed-gpu.sh), ~6 min (each batch size builds an
#             engine, ~100 s); EMBED_ARGS="TEXTS ROUNDS BATCHES" (e.g. "6000 5 128") narrows it
#   spec      speculative decoding at batch 1 on the 1B shape: plain, n-gram and draft at K=4,6,8
#             (SpecBench, greedy tokens checked against plain), one K=4 cycle call by call
#             (SpecCycleBench), each with the draft's LM head in int8 and as stored, and the
#             draft's speedup against the goal of 2x at acceptance 0.8 (llm-gpu.sh spec), ~8 min
set -uo pipefail
D=.devrun
K=/tmp/kb
mkdir -p $K/out
case "${1:-}" in
  start)
    PHASES=${2:-tests,llm,segments,trt}
    V=${TRT_VARIANTS:-trt-fp16,trt-int8-qdq-r0-typed,trt-int8-qdq-w0-typed,trt-int8-qdq-wr0-typed,trt-int8-calib,trt-fp32}
    LP=${LAYERS_PLACEMENTS:-ws}
    LV=trt-fp16; for p in ${LP//,/ }; do LV=$LV,trt-int8-qdq-$p-typed; done
    cat > $K/job.sh <<EOF
cd $PWD
for p in ${PHASES//,/ }; do
  echo "== \$(date -u +%H:%M:%S) phase \$p"
  case \$p in
    tests) OUT=$K/out timeout 420 bash $D/bench/gpu/run-trt-bench.sh tests > /dev/null 2>&1
           grep -E 'tests (successful|failed|found)' $K/out/gpu-tests.log ;;
    trt) bash $D/bench/gpu/run-trt-bench.sh all $V "bench/gpu/device-job.sh start $PHASES (trt: run-trt-bench.sh all $V)" ;;
    layers) bash $D/bench/gpu/run-trt-bench.sh peers --batches 8 --skip-ort --seconds 0.3 > /dev/null 2>&1
           bash $D/bench/gpu/run-trt-bench.sh quantize percentile $LP > /dev/null 2>&1
           OUT=$K/out/layers bash $D/bench/gpu/run-trt-bench.sh bench $LV --batches 8,32 --layers true --seconds 0.8 ;;
    segments) OUT=$K/out bash $D/bench/gpu/run-trt-bench.sh segments ${SEGMENT_TOKENS:-} ;;
    kernels) OUT=$K/out/kernels bash $D/bench/gpu/run-trt-bench.sh tests io.kiln.execution.llm.gpu.GpuKernelsTest io.kiln.execution.llm.gpu.GpuInt8LmHeadTest > /dev/null 2>&1
           grep -E 'FAILED|tests (successful|failed|found)' $K/out/kernels/gpu-tests.log | tail -8 ;;
    runner) OUT=$K/out/runner bash $D/bench/gpu/run-trt-bench.sh tests io.kiln.execution.llm.gpu.GpuLlamaRunnerTest > /dev/null 2>&1
           grep -E 'FAILED|tests (successful|failed|found)' $K/out/runner/gpu-tests.log | tail -8 ;;
    roofline) LLM_ROOFLINE_ONLY=1 OUT=$K/out/llm bash $D/bench/gpu/llm-gpu.sh bench ;;
    spec) OUT=$K/out/spec bash $D/bench/gpu/llm-gpu.sh spec ;;
    serve) OUT=$K/out/serve bash $D/bench/gpu/serve-gpu.sh ;;
    embed) OUT=$K/out/embed bash $D/bench/gpu/embed-gpu.sh ${EMBED_ARGS:-} ;;
    concurrency) mkdir -p $K/out/concurrency; OUT=$K/out/concurrency timeout 300 bash $D/bench/gpu/run-trt-bench.sh concurrency ;;
    llm) mkdir -p $K/out/llm; cp $K/out/gpu-tests.log $K/out/llm/llm-gpu-tests.log 2>/dev/null
         OUT=$K/out/llm bash $D/bench/gpu/llm-gpu.sh bench ;;
  esac
done
echo "== \$(date -u +%H:%M:%S) ALL-DONE"
EOF
    setsid nohup bash $K/job.sh > $K/job.log 2>&1 < /dev/null &
    sleep 5
    tail -3 $K/job.log ;;
  poll)
    # Sleeps up to SECONDS but returns as soon as the job ends: the machine is held (and counted)
    # while a poll sleeps on a finished job.
    for _ in $(seq "${2:-90}"); do
      grep -q ALL-DONE $K/job.log 2>/dev/null && break
      sleep 1
    done
    # Everything measured so far in one archive (a call returns at most 8 files): reports, logs,
    # the TensorRT results and peers; never the models or plans.
    cp $K/job.log ${OUT:-/tmp}/ 2>/dev/null
    (cd $K && tar czf ${OUT:-/tmp}/results.tgz job.log out $(ls results.json peers.json 2>/dev/null))
    grep -E '^== |tests (successful|failed)|b=|built in|FAILED|tokens .*cuBLAS|roofline|exit code|MEETS|MISSES|greedy outputs|texts/s|^\| (draft|ngram) K' $K/job.log \
      | tail -25 | cut -c1-220 ;;
  *) echo "usage: device-job.sh start [PHASES] | poll [SECONDS]"; exit 2 ;;
esac
