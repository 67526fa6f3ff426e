#!/usr/bin/env bash
# 10,000 session open/infer/close cycles on the public BERT, then 100,000 LLM requests on a tiny
# random Llama, sampling RSS, open files and threads. Writes bench/results/soak-<date>.{md,json,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
model=${MODEL:-../shared/models/public/bert/model.onnx}
out=bench/results/soak-$(date -u +%Y-%m-%d)
# A fixed, pre-touched heap: its growth toward -Xmx would otherwise look like a leak.
java -Xms512m -Xmx512m -XX:+AlwaysPreTouch -cp "java/cli/target/kiln.jar:java/cli/target/lib/*" io.kiln.bench.SoakBench \
  --model "$model" --cycles "${CYCLES:-10000}" --requests "${REQUESTS:-100000}" --out "$out"
