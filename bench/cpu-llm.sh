#!/usr/bin/env bash
# kiln bench-llm on the shared tiny Llama, CPU float32, prompt 128, generate 128.
# Writes bench/results/cpu-llm-<date>{,-kv96}.{md,json,png}. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
model=${MODEL:-../shared/models/public/llama}
stamp=$(date -u +%Y-%m-%d)
out=bench/results/cpu-llm-$stamp
java -jar java/cli/target/kiln.jar bench-llm --model "$model" --concurrency 1,8,32 \
  --prompt-len 128 --gen-len 128 --json "$out.json" --markdown "$out.md" --plot "$out.png"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out.md"
java -jar java/cli/target/kiln.jar bench-llm --model "$model" --concurrency 8,32 \
  --prompt-len 128 --gen-len 128 --kv-blocks 96 \
  --json "$out-kv96.json" --markdown "$out-kv96.md" --plot "$out-kv96.png"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out-kv96.md"
