#!/usr/bin/env bash
# Speculative decoding on the CPU at batch 1 (one request at a time), plain against speculative, in
# one process: n-gram lookup over prompts that repeat a random passage, and a draft model made of
# the target's first two layers. The target is a seeded random Llama (make-random-model, no
# download) whose layers after the second have o_proj and down_proj scaled by SCALE, so they add
# almost nothing to the residual stream and the 2-layer draft predicts its greedy tokens.
# Writes bench/results/spec-cpu-<date>.{md,json,png} (or OUT.*). Run on a quiet machine; ~10 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
work=${WORK:-java/cli/target/spec-cpu}
requests=${REQUESTS:-4}
gen_len=${GEN_LEN:-64}
ks=${KS:-2,4}
rounds=${ROUNDS:-2}
seed=${SEED:-1}
scale=${SCALE:-1e-3}
keep=2
layers=12
rm -rf "$work"
mkdir -p "$work"
cat > "$work/config.json" <<JSON
{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":1024,"intermediate_size":2816,
 "num_hidden_layers":$layers,"num_attention_heads":16,"num_key_value_heads":4,"head_dim":64,"vocab_size":8192,
 "max_position_embeddings":2048,"rope_theta":10000.0,"rms_norm_eps":1e-05,"tie_word_embeddings":false,
 "bos_token_id":1,"eos_token_id":2}
JSON
cp=("java/cli/target/kiln.jar:java/cli/target/lib/*")
java -jar java/cli/target/kiln.jar make-random-model --shape "$work/config.json" --seed "$seed" \
  --dtype f32 -o "$work/base"
java -cp "${cp[0]}" io.kiln.bench.ShallowDraftModels "$work/base" "$work/target" "$work/draft" \
  "$keep" "$scale"
models="kiln make-random-model --shape CONFIG --seed $seed --dtype f32 with CONFIG: hidden 1024,"
models+=" $layers layers, 16 heads (4 KV heads, head_dim 64), intermediate 2816, vocab 8192, untied"
models+=" lm_head, f32 on disk; target: that model with o_proj and down_proj of layers $keep-$((layers - 1))"
models+=" multiplied by $scale (ShallowDraftModels); draft: its first $keep layers with the same"
models+=" embeddings, final norm and lm_head"
out=${OUT:-bench/results/spec-cpu-$(date -u +%Y-%m-%d)}
java -Xmx6g -cp "${cp[0]}" io.kiln.bench.SpecBench "$work/target" "$work/draft" cpu "$out" \
  "$requests" "$gen_len" "$ks" "$rounds" "$models" \
  "REQUESTS=$requests GEN_LEN=$gen_len KS=$ks ROUNDS=$rounds SEED=$seed SCALE=$scale bench/cpu-spec.sh"
