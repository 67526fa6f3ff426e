#!/usr/bin/env bash
# Device-side driver of the TensorRT tests and benchmark. Runs from the unpacked app folder
# (.gpu/bin/run.sh puts JAVA_HOME and the TensorRT/CUDA 12 libraries on the paths).
#   bash .devrun/bench/gpu/run-trt-bench.sh tests [SEL..]  # gpu-tagged JUnit tests (packages/classes)
#   bash .devrun/bench/gpu/run-trt-bench.sh peers          # export BERT-base ONNX + PyTorch/ORT peers
#   bash .devrun/bench/gpu/run-trt-bench.sh quantize       # kiln quantize: FP16 and INT8 Q/DQ graphs
#   bash .devrun/bench/gpu/run-trt-bench.sh bench V1,V2    # Kiln variants (see TrtBenchmark.VARIANTS)
#   bash .devrun/bench/gpu/run-trt-bench.sh segments       # LLM dense segments: cuBLAS vs TensorRT
#   bash .devrun/bench/gpu/run-trt-bench.sh concurrency    # dynamic batching on TensorRT, 16 threads
#   bash .devrun/bench/gpu/run-trt-bench.sh report "CMD"   # md/json/png into $OUT
set -uo pipefail
D=.devrun
WORK=${KILN_BENCH_WORK:-/tmp/kb}
OUT=${OUT:-/tmp/kb-out}
mkdir -p "$WORK" "$OUT"
# The JavaCPP cuda preset links cuDNN 9 into its JNI glue; TensorRT never calls it. Stubs with the
# right sonames stand in only where no real cuDNN is installed, and only for the JVM.
JLD=$LD_LIBRARY_PATH
ldconfig -p | grep -q 'libcudnn_cnn.so.9 ' || JLD=$JLD:$PWD/$D/stubs
CP="$D/classes:$D/test-classes:$D/lib/*"
jrun() { LD_LIBRARY_PATH=$JLD java -Xmx16g -Djava.awt.headless=true -Dorg.bytedeco.javacpp.maxPhysicalBytes=0 \
  -Dorg.bytedeco.javacpp.maxBytes=0 -Dorg.slf4j.simpleLogger.showDateTime=true -Dkiln.shared=$D/shared -cp "$CP" "$@"; }
pyrun() { env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3 "$@"; }

phase=${1:-}; shift || true
case "$phase" in
  tests)
    jrun io.kiln.gpu.GpuTestMain "${@:-io.kiln}" 2>&1 | tee "$OUT/gpu-tests.log"
    rc=${PIPESTATUS[0]}
    grep -E '^\[gpu-test\]|rel err|device memory|graph stats|batcher stats|built ' "$OUT/gpu-tests.log" > "$WORK/gpu-tests-summary.txt"
    grep -E 'tests (successful|failed|found)' "$OUT/gpu-tests.log" >> "$WORK/gpu-tests-summary.txt"
    cp "$WORK/gpu-tests-summary.txt" "$OUT/"
    exit $rc ;;
  peers)
    pyrun $D/bench/gpu/bert_base_peers.py "$WORK" "$@" 2>&1 | tee "$OUT/peers.log"
    cp "$WORK/peers.json" "$OUT/" 2>/dev/null ;;
  quantize)  # quantize [METHOD [PLACEMENTS]]: Kiln's FP16 graph and one Q/DQ graph per placement
    jrun io.kiln.bench.driver.TrtBenchmark --work "$WORK" --quantize "${1:-percentile}" \
      --placements "${2:-w,w0,r0,wr0}" 2>&1 | tr '\r' '\n' | grep -v 'calibration' | tee -a "$OUT/quantize.log" ;;
  segments)  # the CUDA Llama runner's dense segments: cuBLAS + Kiln kernels vs TensorRT engines
    jrun io.kiln.bench.gpu.DenseSegmentBench --tokens "${1:-1,8,64,512}" \
      --json "$OUT/dense-segments.json" --markdown "$OUT/dense-segments.md" 2>&1 \
      | grep -v '^\[#* *\] ' | tee "$OUT/dense-segments.log" ;;
  concurrency)  # 16 threads calling infer on a TensorRT FP16 session: default vs merged vs direct
    jrun io.kiln.bench.ConcurrencyBench --device cuda --precision fp16 \
      --model "${1:-$D/models/minilm/model.onnx}" --threads 16 --seq 32 --seconds 3 --rounds 4 \
      --cache-dir "$WORK/concurrency-plans" --out "$OUT/gpu-concurrency" 2>&1 \
      | grep -v '^\[#* *\] ' | tee "$OUT/gpu-concurrency.log" ;;
  bench)
    jrun io.kiln.bench.driver.TrtBenchmark --work "$WORK" --variants "$1" "${@:2}" 2>&1 | tee -a "$OUT/bench.log"
    cp "$WORK/results.json" "$OUT/" 2>/dev/null
    cp "$WORK"/*.layers.json "$OUT/" 2>/dev/null ;;
  report)
    jrun io.kiln.bench.driver.TrtBenchmark --work "$WORK" --report "$OUT" --command "$1" 2>&1 | tail -150
    cp "$WORK/results.json" "$WORK/peers.json" "$OUT/" 2>/dev/null ;;
  all)  # everything after the tests, for one background job: peers, variants, report into $WORK/out
        # (KILN_PLACEMENTS: the Q/DQ graphs to make; KILN_BENCH_ARGS: more TrtBenchmark flags)
    OUT=$WORK/out bash "$0" peers --seconds 1.0
    OUT=$WORK/out bash "$0" quantize percentile "${KILN_PLACEMENTS:-w0,r0,wr0}"
    OUT=$WORK/out bash "$0" bench "$1" --seconds 0.8 --reuse true ${KILN_BENCH_ARGS:-}
    [ -n "${KILN_WITH_TESTS:-}" ] && OUT=$WORK/out timeout 300 bash "$0" tests
    OUT=$WORK/out bash "$0" report "$2"
    echo ALL-DONE ;;
  *) echo "unknown phase '$phase'"; exit 2 ;;
esac
