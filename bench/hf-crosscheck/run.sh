#!/usr/bin/env bash
# Cross-checks Kiln's Llama-family loading against Hugging Face transformers, both ways:
#  1. models written by Kiln (make-random-model: tiny with llama3 rope + tied embeddings, Qwen2 with
#     q/k/v bias, Mistral with an 8-token sliding window, Llama with linear rope + attention bias)
#     load in transformers and give the logits and 16 greedy tokens Kiln's CPU runner gives;
#  2. a decoder ONNX exported by torch.onnx with the Optimum input/output names runs in Kiln's
#     OnnxDecoderRunner and reproduces the shared references.
#  3. the named shapes (tiny, llama-3.2-1b, llama-3-8b) have exactly the parameter names and shapes
#     transformers builds from their config.json (check_shapes.py, meta device, no weights).
# Step 1 writes $WORK; check.py, export_peer.py and check_shapes.py then run where torch and transformers are
# (the device machine: cd $WORK && python3 check.py && python3 export_peer.py && python3 check_shapes.py), and step 3 runs
# the peer graph here.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-java/cli/target/hf-crosscheck}
CP="java/cli/target/kiln.jar:java/cli/target/lib/*"
shared=${SHARED:-../shared/models/public/llama}
case "${1:-write}" in
  write)
    rm -rf "$WORK" && mkdir -p "$WORK"
    java -cp "$CP" bench/hf-crosscheck/WriteModels.java "$WORK"
    cp -r "$shared" "$WORK/public-llama" && chmod -R u+w "$WORK/public-llama"
    java -cp "$CP" bench/hf-crosscheck/WriteShapes.java "$WORK/shapes.json"
    cp bench/hf-crosscheck/check.py bench/hf-crosscheck/export_peer.py bench/hf-crosscheck/check_shapes.py "$WORK/"
    echo "now run check.py and export_peer.py in $WORK with torch + transformers" ;;
  peer)
    dir=$(mktemp -d) && cp "$2" "$dir/model.onnx" && cp "$shared/config.json" "$dir/"
    java -cp "$CP" bench/hf-crosscheck/PeerCheck.java "$dir" "$shared" ;;
esac
