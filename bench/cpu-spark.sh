#!/usr/bin/env bash
# Sentence embedding rows/s on this machine: in-process TextEmbedder against KilnEmbedder on Spark
# local[1] and local[2], on the same 1,000 MiniLM texts in one process, the order rotating within
# each round; plus the paper arithmetic for a cluster. Writes bench/results/spark-<date>.{md,json}.
# Run on a quiet machine, with no build running.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -o -DskipTests package
stamp=$(date -u +%Y-%m-%d)
res=java/core/src/test/resources/precision
java -Dorg.bytedeco.javacpp.maxPhysicalBytes=0 -Djava.awt.headless=true \
  -cp "java/cli/target/kiln.jar:java/cli/target/lib/*" \
  $(unzip -p java/cli/target/kiln.jar META-INF/MANIFEST.MF | tr -d '\r' \
    | awk '/^Add-Opens:/{f=1; sub(/^Add-Opens: /,""); print; next} f&&/^ /{sub(/^ /,""); print; next} {f=0}' \
    | tr -d '\n' | tr ' ' '\n' | sed '/^$/d; s|^|--add-opens=|; s|$|=ALL-UNNAMED|') \
  io.kiln.bench.SparkEmbedBench \
  "$res/heldout-sentences.txt" "bench/results/spark-$stamp" "${TEXTS:-1000}" "${ROUNDS:-3}"
