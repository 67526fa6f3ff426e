#!/usr/bin/env bash
# INT8 (Q/DQ, calibrated on 70 sentences) vs FP32 all-MiniLM-L6-v2 on ONNX Runtime CPU,
# batch 8, seq 128, rounds alternating the two models. Also held-out embedding agreement.
# Writes bench/results/cpu-int8-minilm-<date>.{md,json,png}. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -o -DskipTests package
stamp=$(date -u +%Y-%m-%d)
res=java/src/test/resources/precision
java -Dorg.bytedeco.javacpp.maxPhysicalBytes=0 -Djava.awt.headless=true \
  -cp "java/cli/target/kiln.jar:java/cli/target/lib/*" io.kiln.bench.Int8CpuBench \
  "$res/calibration-sentences.txt" "$res/heldout-sentences.txt" \
  "bench/results/cpu-int8-minilm-$stamp" "${ROUNDS:-10}" "${ITERATIONS:-10}" 8 128
