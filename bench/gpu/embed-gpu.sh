#!/usr/bin/env bash
# On the device machine, from the staged app (through .gpu/bin/run.sh): Kiln on TensorRT FP16
# against sentence-transformers encode (fp16) on all-MiniLM-L6-v2, the goal being >= 2x
# the peer's texts/s. EmbedGpuBench, then st_peer.py (weights read from the same ONNX file, gated
# against ONNX Runtime before timing), then embed_gpu_report.py; everything lands in $OUT.
#   bash .devrun/bench/gpu/embed-gpu.sh [TEXTS [ROUNDS [BATCHES]]]   # defaults 6000 5 32,64,128
# (rounds of 1200 texts last about 50 ms on an H200, too short to time steadily)
# EMBED_PEER_ARGS: more st_peer.py flags (--device cpu tries the whole flow off the GPU).
# About 6 minutes with three engine builds (~100 s each on an H200); a rerun on the same machine
# reuses the plans (measured 2026-12-05: 6000 texts at batch 128 in 30 s with a cached plan).
set -uo pipefail
D=.devrun
OUT=${OUT:-/tmp/kb/out/embed}
MODEL=${EMBED_MODEL:-$D/models/minilm}
TEXTS=${1:-6000}; ROUNDS=${2:-5}; BATCHES=${3:-32,64,128}
mkdir -p "$OUT"
LOG=$OUT/embed-gpu-run.log
# The JavaCPP cuda preset links cuDNN 9 into its JNI glue; TensorRT never calls it. Stubs stand in
# only where no real cuDNN is installed, and only for the JVM.
JLD=${LD_LIBRARY_PATH:-}
ldconfig -p | grep -q 'libcudnn_cnn.so.9 ' || JLD=$JLD:$PWD/$D/stubs
JAVA=(env LD_LIBRARY_PATH="$JLD" java -Xmx16g -Djava.awt.headless=true -Dorg.bytedeco.javacpp.maxPhysicalBytes=0
  -Dorg.bytedeco.javacpp.maxBytes=0 -Dorg.slf4j.simpleLogger.showDateTime=true -Dkiln.shared=$D/shared
  -cp "$D/classes:$D/test-classes:$D/lib/*")
PY=(env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3)  # torch brings its own CUDA libraries
stage() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

stage "device"
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader | tee -a "$LOG"
[ -f "$MODEL/model.onnx" ] || { stage "no $MODEL/model.onnx: stage-devrun.sh makes it"; exit 1; }

stage "Kiln TensorRT FP16: EmbedGpuBench $TEXTS texts, $ROUNDS rounds, batches $BATCHES"
timeout 600 "${JAVA[@]}" io.kiln.bench.EmbedGpuBench "$MODEL" $D/test-classes/precision/heldout-sentences.txt \
  "$OUT" "$TEXTS" "$ROUNDS" "$BATCHES" 2>&1 \
  | tr '\r' '\n' | grep -v '^\[#* *\] ' | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "kiln exit code $rc" | tee -a "$LOG"
[ "$rc" = 0 ] || exit "$rc"

stage "sentence-transformers encode fp16: st_peer.py, batches $BATCHES"
timeout 300 "${PY[@]}" $D/bench/gpu/st_peer.py "$MODEL" "$OUT" \
  --batches "$BATCHES" --rounds "$ROUNDS" ${EMBED_PEER_ARGS:-} 2>&1 | grep -v -E 'Writing model shards|Loading weights' | tee -a "$LOG"
rc=${PIPESTATUS[0]}
echo "peer exit code $rc" | tee -a "$LOG"
[ "$rc" = 0 ] || exit "$rc"

stage "report"
EMBED_GPU_ARGS="${*:-}" "${PY[@]}" $D/bench/gpu/embed_gpu_report.py "$OUT" 2>&1 | tee -a "$LOG"
stage "done"
