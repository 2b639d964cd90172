#!/usr/bin/env bash
# Sanitizer CI step: builds the SDK, host, plugins and a subset of the unit tests with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs them (tests/CMakeLists.txt,
# llmhost_sanitize_tests: safetensors, config, JSON, atomic files, metrics, tokenizers, the
# bad-input corpus through the binary, kill -9 + resume, plugin permissions, fuzz regressions),
# then the CUDA kernels under the CPU emulation (llmhost_emulated_kernel_tests: an out-of-bounds
# read or write of a kernel, or undefined arithmetic, fails there).
# Uses clang when present, configured exactly as scripts/fuzz.sh configures it (fuzz targets
# included), so the two share build-san without rebuilding each other's objects; else gcc.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-san}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}
COMPILER=()
if [ -n "${SANITIZE_CXX:-}" ]; then COMPILER=(-DCMAKE_CXX_COMPILER="$SANITIZE_CXX")  # e.g. g++
elif command -v clang++ >/dev/null; then COMPILER=(-DCMAKE_CXX_COMPILER=clang++ -DLLMHOST_FUZZ=ON); fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${COMPILER[@]}" \
  -DLLMHOST_SANITIZE=address,undefined >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target llmhost_sanitize_tests llmhost_emulated_kernel_tests
# LibTorch is not instrumented: its one-time allocations look like leaks to LeakSanitizer.
# Child llmhost processes inherit these, so a report there fails the test that ran them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$BUILD_DIR/tests/llmhost_sanitize_tests" "$@"
# The wrapping copy ring's shape (~1 min instrumented) runs in the plain build only.
"$BUILD_DIR/tests/llmhost_emulated_kernel_tests" --gtest_filter='-*Wraps*'
