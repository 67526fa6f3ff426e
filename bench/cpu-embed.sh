#!/usr/bin/env bash
# Sentence embedding texts/s on the CPU: langchain4j embedAll vs Kiln FP32 vs Kiln INT8, on the
# same all-MiniLM-L6-v2 and the same 1,200 texts of mixed lengths, in one process, the three
# rotating within each round. Also INT8-to-FP32 cosine. Writes
# bench/results/embed-cpu-<date>.{md,json,png}. Run on a quiet machine, with no build running.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -o -DskipTests package
stamp=$(date -u +%Y-%m-%d)
res=java/core/src/test/resources/precision
java -Dorg.bytedeco.javacpp.maxPhysicalBytes=0 -Djava.awt.headless=true \
  -cp "java/cli/target/kiln.jar:java/cli/target/lib/*" io.kiln.bench.EmbedCpuBench \
  "$res/heldout-sentences.txt" "$res/calibration-sentences.txt" \
  "bench/results/embed-cpu-$stamp" "${TEXTS:-1200}" "${ROUNDS:-3}"
