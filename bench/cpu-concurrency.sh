#!/usr/bin/env bash
# Concurrent Session.infer callers on the embedded all-MiniLM-L6-v2, CPU: calls/s with the default
# dynamic batching, with merging forced on, and with it off, alternating in one run.
# Writes bench/results/cpu-concurrency-<date>.{md,json}. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
out=bench/results/cpu-concurrency-$(date -u +%Y-%m-%d)
java -cp "java/cli/target/kiln.jar:java/cli/target/lib/*" io.kiln.bench.ConcurrencyBench \
  --threads "${THREADS:-16}" --seq "${SEQ:-32}" --seconds "${SECONDS_PER_ROUND:-3}" \
  --rounds "${ROUNDS:-4}" --out "$out"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out.md"
