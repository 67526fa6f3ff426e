#!/usr/bin/env bash
# Here, before a device streak: gathers what the device runs need into the ignored folder .devrun
# (classes with the kernel fatbin, the runtime jars, JUnit, the device scripts, the public BERT
# and Llama test models, cuDNN stubs) and packs it into .gpu/app chunks with
# ../shared/gpu/stage-app.sh. Both run-trt-bench.sh and llm-gpu.sh run from this layout.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel); cd "$ROOT"
MODULES="java/core java/cuda java/cli"
T=java/cli/target
SHARED=${KILN_SHARED:-$ROOT/../shared}
[ -f java/cuda/target/classes/io/kiln/native/llm_kernels.fatbin ] \
  || { echo "the kernel fatbin was not built (nvcc and cmake needed here)"; exit 1; }
rm -rf .devrun && mkdir -p .devrun/lib .devrun/stubs .devrun/bench/gpu .devrun/shared/models/public/bert
# Every module's classes merged into one folder (and tests into another); the modules'
# ServiceLoader registrations of one service are concatenated, not overwritten.
for kind in classes test-classes; do
  mkdir -p .devrun/$kind
  for m in $MODULES; do
    [ -d $m/target/$kind ] && cp -r $m/target/$kind/. .devrun/$kind/
  done
  rm -rf .devrun/$kind/META-INF/services
  for m in $MODULES; do
    for s in $m/target/$kind/META-INF/services/*; do
      [ -f "$s" ] || continue
      mkdir -p .devrun/$kind/META-INF/services
      cat "$s" >> .devrun/$kind/META-INF/services/"$(basename "$s")"
    done
  done
done
# Every runtime jar but the Kiln jars (merged above) and the embedded MiniLM model (83 MB), which
# no device run uses.
for j in $T/lib/*.jar $T/test-lib/*.jar; do
  case "$(basename "$j")" in
    langchain4j-embeddings-*|kiln-*) ;;
    *) cp -n "$j" .devrun/lib/ ;;
  esac
done
cp bench/gpu/*.py bench/gpu/*.sh .devrun/bench/gpu/
cp "$SHARED"/models/public/bert/{model.onnx,reference.json} .devrun/shared/models/public/bert/
cp -r "$SHARED"/models/public/llama .devrun/shared/models/public/
echo 'int kiln_cudnn_stub(void) { return 0; }' > .devrun/stubs/s.c
for n in cudnn_cnn cudnn_adv cudnn_ops cudnn_graph; do
  gcc -shared -fPIC -o .devrun/stubs/lib$n.so.9 .devrun/stubs/s.c -Wl,-soname,lib$n.so.9
done
du -sh .devrun
../shared/gpu/stage-app.sh .devrun
