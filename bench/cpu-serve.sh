#!/usr/bin/env bash
# kiln serve over HTTP against in-process bench-llm, on the tiny chat Llama, on this CPU, one run:
# bench-serve at concurrency 32 and 512 through a local server, then bench-llm at concurrency 32
# with the same prompt and generation lengths and request count. Writes
# bench/results/serve-cpu-<date>-{http,inprocess}.{md,json,png} and a summary .md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
model=${MODEL:-../shared/models/public/llama-chat}
port=${PORT:-8123}
out=bench/results/serve-cpu-$(date -u +%Y-%m-%d)
./kiln serve --model "$model" --port "$port" --embedding-model none --max-num-seqs 128 \
  --max-queue 1024 > /tmp/kiln-serve.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 1; done
# The client is only a load generator sharing the server's two cores: C1-compiled with the serial
# collector, it spends about half the CPU it would with C2 and G1, and leaves the rest to the server.
KILN_JAVA_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC" ./kiln bench-serve --url "http://127.0.0.1:$port" --concurrency 32,512 --prompt-len 64 \
  --gen-len 64 --requests 512 --json "$out-http.json" --markdown "$out-http.md" --plot "$out-http.png"
kill -TERM $server; wait $server || true
./kiln bench-llm --model "$model" --concurrency 32 --prompt-len 64 --gen-len 64 --requests 512 \
  --max-num-seqs 128 --json "$out-inprocess.json" --markdown "$out-inprocess.md" \
  --plot "$out-inprocess.png"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
http = {r["concurrency"]: r for r in json.load(open(out + "-http.json"))["rows"]}
inproc = {r["concurrency"]: r for r in json.load(open(out + "-inprocess.json"))["rows"]}
h, i = http[32]["output_tokens_per_second"], inproc[32]["output_tokens_per_second"]
with open(out + ".md", "w") as f:
    f.write("# kiln serve over HTTP against in-process bench-llm (tiny chat Llama, CPU)\n\n")
    f.write("Command: `bash bench/cpu-serve.sh`; reports: `%s-http.md`, `%s-inprocess.md`.\n\n" % (out, out))
    f.write("| concurrency | HTTP output tok/s | in-process output tok/s | HTTP / in-process |\n")
    f.write("|---:|---:|---:|---:|\n")
    f.write("| 32 | %.1f | %.1f | %.3f |\n" % (h, i, h / i))
    f.write("| 512 | %.1f | | |\n" % http[512]["output_tokens_per_second"])
    r = http[512]
    f.write("\nAt concurrency 512, %d streams completed without an error (bench-serve stops at the"
            " first), with %d tokens against the %d that %d requests of %d must give.\n"
            % (r["requests"], r["generated_tokens"], r["requests"] * 64, r["requests"], 64))
print(open(out + ".md").read())
PY
