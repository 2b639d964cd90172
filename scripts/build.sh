#!/usr/bin/env bash
# Configures and builds llmhost (Release) into ./build. Set BUILD_DIR to use another folder;
# extra arguments go to CMake's configure step.
# LibTorch, first found of: $LIBTORCH (an unpacked LibTorch archive, e.g. libtorch-cxx11-abi-*
# with CUDA), the PyTorch wheel of `python3` when it was built with CUDA (a lab's GPU node), else
# Debian's libtorch-dev (CPU; installed by scripts/setup.sh). CUDA is then found by LibTorch's
# own CMake files; the result runs with no LD_PRELOAD or extra environment (README, GPU section).
# Set LLMHOST_TARGETS to build only some targets (scripts/demo.sh builds llmhost and the plugins).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PREFIX=""
if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/share/cmake/Torch/TorchConfig.cmake" ] ||
    { echo "build.sh: LIBTORCH=$LIBTORCH holds no share/cmake/Torch/TorchConfig.cmake" >&2; exit 2; }
  TORCH_PREFIX=$LIBTORCH
elif command -v python3 >/dev/null &&
  python3 -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; then
  TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
fi
LLMHOST_EXTERNAL_TORCH=$([ -n "$TORCH_PREFIX" ] && echo 1 || echo 0) scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
# ccache hits across clones and worktrees: hash paths relative to the source tree.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
PREFIX_ARGS=()
if [ -n "$TORCH_PREFIX" ]; then
  echo "build.sh: LibTorch from $TORCH_PREFIX" >&2
  PREFIX_ARGS=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX${CMAKE_PREFIX_PATH:+;$CMAKE_PREFIX_PATH}")
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${PREFIX_ARGS[@]}" "$@" >/dev/null
TARGETS=()
for t in ${LLMHOST_TARGETS:-}; do TARGETS+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$(nproc)" "${TARGETS[@]}"
