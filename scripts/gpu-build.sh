#!/usr/bin/env bash
# Builds llmhost on the GPU machine against the PyTorch wheel's LibTorch (2.x, CUDA), with the
# Debian libraries carried in .gpu-debs/ (see scripts/fetch-gpu-debs.sh) unpacked into a prefix.
# Usage (on the GPU machine, in the repo root): scripts/gpu-build.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-/tmp/llmhost-build}
DEPS=${DEPS:-/tmp/deps}
mkdir -p "$DEPS"
for f in .gpu-debs/*.deb; do dpkg -x "$f" "$DEPS"; done
export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
TP=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TP;$DEPS/usr" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
echo "gpu-build: built into $BUILD_DIR; run $BUILD_DIR/bin/llmhost as it is (no LD_PRELOAD, no LD_LIBRARY_PATH)"
