#!/usr/bin/env bash
# Kiln's CPU forward pass against ONNX Runtime running Kiln's ONNX export of the same model, in
# one process: prefill of 128 tokens and 32 greedy decode steps at batch 1 and 4, float32, over
# ROUNDS rounds (default 5) in which the two take turns going first (ratios: medians of same-round
# ratios).
# The model is a seeded random Llama of about 120M parameters (make-random-model, no download).
# Writes bench/results/cpu-llm-runners-<date>.{md,json,png}. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f java/cli/target/kiln.jar ] || mvn -B -q -DskipTests package
work=${WORK:-java/cli/target/llm-runners}
mkdir -p "$work"
cat > "$work/config.json" <<'JSON'
{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":1024,"intermediate_size":2816,
 "num_hidden_layers":8,"num_attention_heads":16,"num_key_value_heads":4,"head_dim":64,"vocab_size":32000,
 "max_position_embeddings":2048,"rope_theta":10000.0,"rms_norm_eps":1e-05,"tie_word_embeddings":false,
 "bos_token_id":1,"eos_token_id":2}
JSON
rm -rf "$work/model"
java -jar java/cli/target/kiln.jar make-random-model --shape "$work/config.json" --seed 1 --dtype f16 -o "$work/model"
out=bench/results/cpu-llm-runners-$(date -u +%Y-%m-%d)
java -Xmx6g -cp "java/cli/target/kiln.jar:java/cli/target/lib/*" io.kiln.bench.LlmRunnerComparison \
  "$work/model" "$out" 128 32 1,4 "${ROUNDS:-5}"
