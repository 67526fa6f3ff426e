#!/usr/bin/env bash
# Here, before a device streak: gathers what the device run needs into the ignored folder .devrun
# (classes, the jars the GPU path uses, the Python peers, the public BERT test model, cuDNN stubs)
# and packs it into .gpu/app chunks with ../shared/gpu/stage-app.sh.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel); cd "$ROOT"
T=java/target
rm -rf .devrun && mkdir -p .devrun/lib .devrun/stubs .devrun/bench/gpu .devrun/shared/models/public/bert
cp -r $T/classes $T/test-classes .devrun/
for j in $T/lib/*.jar $T/test-lib/*.jar; do
  case "$(basename "$j")" in
    langchain4j-*|tokenizers-*|onnx-1.*|api-0.*|commons-compress-*|gson-*|jspecify-*|error_prone*) ;;
    *) cp -n "$j" .devrun/lib/ ;;
  esac
done
cp bench/gpu/*.py bench/gpu/*.sh .devrun/bench/gpu/
cp "${KILN_SHARED:-$ROOT/../shared}"/models/public/bert/{model.onnx,reference.json} .devrun/shared/models/public/bert/
echo 'int kiln_cudnn_stub(void) { return 0; }' > .devrun/stubs/s.c
for n in cudnn_cnn cudnn_adv cudnn_ops cudnn_graph; do
  gcc -shared -fPIC -o .devrun/stubs/lib$n.so.9 .devrun/stubs/s.c -Wl,-soname,lib$n.so.9
done
du -sh .devrun
../shared/gpu/stage-app.sh .devrun
