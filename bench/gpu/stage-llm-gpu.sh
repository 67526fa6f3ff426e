#!/usr/bin/env bash
# Here (the build machine): builds the jar classes with the kernel fatbin, copies the public tiny
# Llama in, and packs what bench/gpu/llm-gpu.sh needs into app chunks. The chunks are put into
# the checkout that the device tool sends (default /work/main, whose .gpu/ is git-ignored), next
# to the library chunks that ../shared/gpu/stage-libs.sh made there.
# Usage: bench/gpu/stage-llm-gpu.sh [CHECKOUT]
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel)
cd "$ROOT"
DEST=$(cd "${1:-/work/main}" && pwd)
SHARED=$(cd "$ROOT/.." && pwd)/shared
(cd java && mvn -B -q -o -DskipTests package)
[ -f java/target/classes/io/kiln/native/llm_kernels.fatbin ] \
  || { echo "the kernel fatbin was not built (nvcc and cmake needed here)"; exit 1; }
rm -rf .work/gpu-app .work/models/public/llama
mkdir -p .work/gpu-app/lib .work/gpu-app/test-lib .work/models/public
cp -r "$SHARED/models/public/llama" .work/models/public/
# Everything the CLI loads (bench reports name the ONNX Runtime version, so its natives come
# along) except the embedded MiniLM model, which no GPU LLM run uses.
for j in java/target/lib/*.jar; do
  case $(basename "$j") in
    langchain4j-embeddings-all-minilm*) ;;
    *) cp "$j" .work/gpu-app/lib/ ;;
  esac
done
cp java/target/test-lib/junit-*.jar java/target/test-lib/opentest4j-*.jar \
  java/target/test-lib/apiguardian-*.jar .work/gpu-app/test-lib/
"$SHARED/gpu/stage-app.sh" java/target/classes java/target/test-classes .work/gpu-app \
  .work/models/public/llama bench/gpu
if [ "$DEST" != "$ROOT" ]; then
  mkdir -p "$DEST/.gpu"
  rm -rf "$DEST/.gpu/app"
  cp -r .gpu/app "$DEST/.gpu/app"
fi
[ -d "$DEST/.gpu/libs" ] && [ -d "$DEST/.gpu/bin" ] \
  || echo "no library chunks in $DEST/.gpu: run ../shared/gpu/stage-libs.sh there first"
echo "library chunks: $(ls -d "$DEST"/.gpu/libs/c* | wc -l), app chunks: $(ls -d "$DEST"/.gpu/app/a* | wc -l) in $DEST/.gpu"
