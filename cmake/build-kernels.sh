#!/usr/bin/env bash
# Called by the Maven build: builds a kernel fatbin into the given resource folder with CMake,
# llm_kernels (generate-resources, into the jar) or test_kernels (generate-test-resources, onto the
# test classpath only). Without nvcc it says so and succeeds: the GPU path then reports that the
# kernels were not built. Usage: cmake/build-kernels.sh OUTPUT_DIR [BUILD_DIR] [KERNELS]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${1:?usage: build-kernels.sh OUTPUT_DIR [BUILD_DIR] [llm_kernels|test_kernels]}
KERNELS=${3:-llm_kernels}
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && NVCC=$CUDA_HOME/bin/nvcc
if [ -z "$NVCC" ] || ! command -v cmake >/dev/null; then
  echo "[kiln] nvcc or cmake not found: GPU kernels ($KERNELS) not built (the CUDA runner will report it)"
  exit 0
fi
BUILD_DIR=${2:-$OUT_DIR/../native-build}
cmake -S "$HERE" -B "$BUILD_DIR" -DKILN_FATBIN_DIR="$OUT_DIR" -DKILN_KERNELS="$KERNELS" -DNVCC="$NVCC" ${KILN_CUDA_ARCHS:+-DKILN_CUDA_ARCHS="$KILN_CUDA_ARCHS"} >/dev/null
cmake --build "$BUILD_DIR"
