#!/usr/bin/env bash
# Called by the Maven build (generate-resources): builds the kernel fatbin into the given resource
# folder with CMake. Without nvcc it says so and succeeds: the GPU path then reports that the
# kernels were not built. Usage: cmake/build-kernels.sh OUTPUT_DIR [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${1:?usage: build-kernels.sh OUTPUT_DIR [BUILD_DIR]}
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ] && NVCC=$CUDA_HOME/bin/nvcc
if [ -z "$NVCC" ] || ! command -v cmake >/dev/null; then
  echo "[kiln] nvcc or cmake not found: GPU kernels not built (the CUDA runner will report it)"
  exit 0
fi
BUILD_DIR=${2:-$OUT_DIR/../native-build}
cmake -S "$HERE" -B "$BUILD_DIR" -DKILN_FATBIN_DIR="$OUT_DIR" -DNVCC="$NVCC" ${KILN_CUDA_ARCHS:+-DKILN_CUDA_ARCHS="$KILN_CUDA_ARCHS"} >/dev/null
cmake --build "$BUILD_DIR"
