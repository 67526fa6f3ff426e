#!/usr/bin/env bash
# Here, for a lease that runs only the CUDA Llama runner (no TensorRT): the library chunks without
# libnvinfer and libnvonnxparser, as .gpu/libs/cllm01.. (7 chunks instead of 20). Needs the cache
# that ../shared/gpu/stage-libs.sh fills (~/.cache/gpu-stage/libs.tar.zst). Send them as the README
# says for .gpu/libs/cNN: one `bash .gpu/bin/recv.sh` call per chunk, carry [".gpu/bin", ".gpu/libs/cllmNN"].
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel); cd "$ROOT"
CACHE=${GPU_STAGE_CACHE:-$HOME/.cache/gpu-stage}
[ -f "$CACHE/libs.tar.zst" ] || { echo "run ../shared/gpu/stage-libs.sh first"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zstd -d -q --long=27 -c "$CACHE/libs.tar.zst" \
  | tar xf - -C "$work" --exclude='lib/libnvinfer*' --exclude='lib/libnvonnxparser*'
(cd "$work" && tar cf - lib jre) | zstd -T0 -q -9 --long=27 -o "$work/llm-libs.tar.zst"
rm -rf .gpu/libs/cllm*
mkdir -p "$work/parts"
split -b 48M -d -a 2 "$work/llm-libs.tar.zst" "$work/parts/part"
for p in "$work"/parts/part*; do
  d=.gpu/libs/cllm$(printf %02d $((10#${p##*part} + 1)))
  mkdir -p "$d" && mv "$p" "$d/"
done
cp "$(command -v zstd)" "$(ls -d .gpu/libs/cllm* | tail -1)/zstd"  # the last chunk is the smallest
echo "staged $(ls -d .gpu/libs/cllm* | wc -l) LLM library chunks: .gpu/libs/cllm01.."
