#!/usr/bin/env bash
# On the device machine (through .gpu/bin/run.sh, from the app that stage-devrun.sh packed):
# `kiln serve --device cuda` on a random Llama-3.2-1B-shaped fp16 model, loaded over HTTP with
# `kiln bench-serve` at concurrency 1, 32 and 128, then in-process `kiln bench-llm` at the same
# levels with the same prompt and generation lengths and request counts. Each side runs every level
# twice and the second (warm) row is compared. Writes serve-gpu-{http,inprocess}.{md,json,png},
# serve-gpu.md and serve-gpu-run.log to $OUT.
#   bash .devrun/bench/gpu/serve-gpu.sh
set -uo pipefail
D=.devrun
OUT=${OUT:-/tmp/kb/out/serve}
mkdir -p "$OUT"
LOG=$OUT/serve-gpu-run.log
CP="$D/classes:$D/test-classes:$D/lib/*"
ldconfig -p | grep -q 'libcudnn_cnn.so.9 ' || export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:$PWD/$D/stubs
JOPTS=(-Xmx24g -Djava.awt.headless=true -Dorg.bytedeco.javacpp.maxPhysicalBytes=0
  -Dorg.bytedeco.javacpp.maxBytes=0)
MODEL=/tmp/llama-3.2-1b-random
PORT=8123
CONC=${SERVE_GPU_CONCURRENCY:-1,32,128}
# Both sides run each level twice (the first warms the JIT), the same requests per level.
LEVELS=$(echo "$CONC" | tr ',' '\n' | sed 's/.*/&,&/' | paste -sd,)
REQUESTS=${SERVE_GPU_REQUESTS:-128}
stage() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

stage "device"
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv,noheader | tee -a "$LOG"
if [ ! -f "$MODEL/config.json" ]; then
  stage "make-random-model llama-3.2-1b f16"
  timeout 60 java "${JOPTS[@]}" -cp "$CP" io.kiln.cli.KilnCli make-random-model \
    --shape llama-3.2-1b --dtype f16 --seed 1 -o "$MODEL" 2>&1 | tr '\r' '\n' | tail -1 | tee -a "$LOG"
fi

stage "kiln serve --device cuda"
if curl -s "http://127.0.0.1:$PORT/health" > /dev/null; then
  stage "port $PORT is taken"; exit 1
fi
# java itself in the background (not a function's subshell), so that SIGTERM reaches the server.
java "${JOPTS[@]}" -cp "$CP" io.kiln.cli.KilnCli serve --model "$MODEL" --device cuda --dtype f16 --port "$PORT" --embedding-model none \
  --max-num-seqs 128 --max-batched-tokens 2048 --max-queue 4096 > "$OUT/serve-gpu-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
up=0
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && { up=1; break; }
  kill -0 $server 2>/dev/null || break
  sleep 1
done
if [ $up = 0 ]; then
  stage "the server did not come up"; tail -30 "$OUT/serve-gpu-server.log" | tee -a "$LOG"; exit 1
fi
stage "kiln bench-serve --concurrency $LEVELS --requests $REQUESTS"
timeout 240 java "${JOPTS[@]}" -XX:+UseSerialGC -cp "$CP" io.kiln.cli.KilnCli bench-serve \
  --url "http://127.0.0.1:$PORT" --concurrency "$LEVELS" --prompt-len 128 --gen-len 128 \
  --requests "$REQUESTS" --json "$OUT/serve-gpu-http.json" --markdown "$OUT/serve-gpu-http.md" \
  --plot "$OUT/serve-gpu-http.png" 2>&1 | tr '\r' '\n' | grep -v '^\[#* *\] ' | tee -a "$LOG"
echo "bench-serve exit code ${PIPESTATUS[0]}" | tee -a "$LOG"
stage "SIGTERM to the server"
kill -TERM $server; wait $server; echo "server exit code $?" | tee -a "$LOG"
tail -5 "$OUT/serve-gpu-server.log" | tee -a "$LOG"

stage "kiln bench-llm --device cuda --concurrency $LEVELS --requests $REQUESTS (in-process)"
timeout 240 java "${JOPTS[@]}" -cp "$CP" io.kiln.cli.KilnCli bench-llm --model "$MODEL" \
  --device cuda --dtype f16 --concurrency "$LEVELS" --prompt-len 128 --gen-len 128 \
  --requests "$REQUESTS" --max-num-seqs 128 --max-batched-tokens 2048 \
  --json "$OUT/serve-gpu-inprocess.json" --markdown "$OUT/serve-gpu-inprocess.md" \
  --plot "$OUT/serve-gpu-inprocess.png" 2>&1 | tr '\r' '\n' | grep -v '^\[#* *\] ' | tee -a "$LOG"
echo "bench-llm exit code ${PIPESTATUS[0]}" | tee -a "$LOG"

stage "summary"
env -u LD_LIBRARY_PATH python3 - "$OUT" "$CONC" "$REQUESTS" <<'PY' 2>&1 | tee -a "$LOG"
import json, subprocess, sys
out, levels, requests = sys.argv[1], [int(c) for c in sys.argv[2].split(",")], int(sys.argv[3])
def warm(name):
    rows = {}
    for r in json.load(open(f"{out}/serve-gpu-{name}.json"))["rows"]:
        rows[r["concurrency"]] = r  # the later row of a level is the warm one
    return rows
http, inproc = warm("http"), warm("inprocess")
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except FileNotFoundError:
    gpu = "no nvidia-smi"

ms = lambda r, k: "%.1f" % r[k] if r.get(k) is not None else "-"
lines = ["# kiln serve over HTTP against in-process bench-llm, random Llama-3.2-1B shape, fp16, CUDA", "",
         f"- device: {gpu}",
         "- command: `bash .gpu/bin/run.sh bash .devrun/bench/gpu/device-job.sh start serve`"
         " (`bench/gpu/serve-gpu.sh`)",
         f"- prompt 128 random ids, 128 generated tokens (ignore_eos), {requests} requests per level;"
         " each level ran twice on each side and the second (warm) run is compared",
         "- server: `kiln serve --device cuda --dtype f16 --max-num-seqs 128 --max-batched-tokens 2048`;"
         " in-process: `kiln bench-llm` with the same engine options, after the server exited", "",
         "| concurrency | HTTP output tok/s | in-process output tok/s | HTTP / in-process"
         " | HTTP TTFT p50 / p99 ms | HTTP ITL p50 / p99 ms |",
         "|---:|---:|---:|---:|---:|---:|"]
for c in levels:
    h, i = http.get(c), inproc.get(c)
    if not h or not i:
        lines.append(f"| {c} | missing | | | | |"); continue
    ht, it = h["output_tokens_per_second"], i["output_tokens_per_second"]
    lines.append(f"| {c} | {ht:.0f} | {it:.0f} | {ht / it:.3f} | {ms(h, 'ttft_p50_ms')} / {ms(h, 'ttft_p99_ms')}"
                 f" | {ms(h, 'itl_p50_ms')} / {ms(h, 'itl_p99_ms')} |")
open(f"{out}/serve-gpu.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
stage "done"
