#!/usr/bin/env bash
# kiln serve over HTTP against in-process bench-llm, on the tiny chat Llama, on this CPU, one run:
# bench-serve at concurrency 32 (which also warms the server's JIT), then at 32 and 512 through the
# same server, then bench-llm at concurrency 32 twice (the first warms its JIT) with the same prompt
# and generation lengths and request count; warm rows are compared. Writes
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
client_opts="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
scratch=$(mktemp -d)
server_cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -f "kiln.jar serve .*--port $port" | head -1)/stat"; }
before=$(server_cpu)
KILN_JAVA_OPTS="$client_opts" /usr/bin/time -f "%U %S" -o "$scratch/client-cpu.txt" ./kiln bench-serve \
  --url "http://127.0.0.1:$port" --concurrency 32 --prompt-len 64 --gen-len 64 --requests 512 \
  --json "$scratch/http32.json" > /dev/null
echo "$(( $(server_cpu) - before ))" > "$scratch/server-ticks.txt"
KILN_JAVA_OPTS="$client_opts" ./kiln bench-serve --url "http://127.0.0.1:$port" --concurrency 32,512 \
  --prompt-len 64 --gen-len 64 --requests 512 --json "$out-http.json" --markdown "$out-http.md" \
  --plot "$out-http.png"
kill -TERM $server; wait $server || true
./kiln bench-llm --model "$model" --concurrency 32,32 --prompt-len 64 --gen-len 64 --requests 512 \
  --max-num-seqs 128 --json "$out-inprocess.json" --markdown "$out-inprocess.md" \
  --plot "$out-inprocess.png"
python3 - "$out" "$(getconf CLK_TCK)" "$scratch" <<'PY'
import json, sys
out, hz, scratch = sys.argv[1], float(sys.argv[2]), sys.argv[3]
http = {r["concurrency"]: r for r in json.load(open(out + "-http.json"))["rows"]}
# The last row of a concurrency is the warm one: the first run at it warmed the JIT.
inproc = {r["concurrency"]: r for r in json.load(open(out + "-inprocess.json"))["rows"]}
h, i = http[32]["output_tokens_per_second"], inproc[32]["output_tokens_per_second"]
c32 = json.load(open(scratch + "/http32.json"))["rows"][0]
server = float(open(scratch + "/server-ticks.txt").read()) / hz
client = sum(map(float, open(scratch + "/client-cpu.txt").read().split()))
with open(out + ".md", "w") as f:
    f.write("# kiln serve over HTTP against in-process bench-llm (tiny chat Llama, CPU)\n\n")
    f.write("Command: `bash bench/cpu-serve.sh`; reports: `%s-http.md`, `%s-inprocess.md`.\n\n" % (out, out))
    f.write("| concurrency | HTTP output tok/s | in-process output tok/s | HTTP / in-process |\n")
    f.write("|---:|---:|---:|---:|\n")
    f.write("| 32 (warm) | %.1f | %.1f | %.3f |\n" % (h, i, h / i))
    f.write("| 512 | %.1f | | |\n" % http[512]["output_tokens_per_second"])
    r = http[512]
    f.write("\nAt concurrency 512, %d streams completed without an error (bench-serve stops at the"
            " first), with %d tokens against the %d that %d requests of %d must give.\n"
            % (r["requests"], r["generated_tokens"], r["requests"] * 64, r["requests"], 64))
    f.write("\nBoth sides are compared warm: each ran the same 512 requests at c32 once before (the"
            " server in its CPU-measured run below, bench-llm in its first row), so neither"
            " throughput includes JIT compilation.\n")
    f.write("\nCold, the first c32 run over HTTP reached %.1f tok/s, %.3fx the warm in-process"
            " figure: the server warms up more code (Vert.x, Netty, Jackson) than bench-llm does."
            " That no stream loses, duplicates or reorders a token under load is a test:"
            " `GreedyParityTest` checks 512 concurrent streams token for token.\n"
            % (c32["output_tokens_per_second"], c32["output_tokens_per_second"] / i))
    f.write("\nWhere the CPU went in a separate c32 run of the same 512 requests (%.1f tok/s over"
            " %.1f s): the server %.1f CPU s, the client %.1f CPU s (JVM start-up included), on"
            " 2 cores, %.1f core-seconds in all.\n"
            % (c32["output_tokens_per_second"], c32["seconds"], server, client, 2 * c32["seconds"]))
print(open(out + ".md").read())
PY
rm -r "$scratch"
