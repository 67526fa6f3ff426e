#!/usr/bin/env bash
# Kiln vs raw ONNX Runtime on the embedded all-MiniLM-L6-v2, CPU, seq 128.
# Writes bench/results/cpu-minilm-<date>.{md,json,png}. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
stamp=$(date -u +%Y-%m-%d)
out=bench/results/cpu-minilm-$stamp
java -jar java/cli/target/kiln.jar bench --batch 1,4,8,16,32 --seq 128 --warmup 3 \
  --iterations "${ITERATIONS:-30}" --rounds "${ROUNDS:-6}" \
  --json "$out.json" --markdown "$out.md" --plot "$out.png"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out.md"
