#!/usr/bin/env bash
# Runs one libFuzzer target for a while: scripts/fuzz.sh NAME SECONDS
#   NAME: safetensors | model_config | tokenizer_json | tokenizer_encode | dolly | alpaca
# Builds with clang, ASan+UBSan and libFuzzer into $BUILD_DIR (default build-san, shared with
# scripts/test-sanitize.sh). The corpus grows in $BUILD_DIR/fuzz-corpus/NAME (seeded from the
# fixtures in tests/data and tests/fuzz/seeds); a crash lands in $BUILD_DIR/fuzz-artifacts/NAME:
# copy it to tests/fuzz/regressions/NAME/ so the unit tests replay it (FuzzRegression suite).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${1:?usage: scripts/fuzz.sh NAME SECONDS}
SECONDS_TO_RUN=${2:-60}
BUILD_DIR=${BUILD_DIR:-build-san}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_SLOPPINESS=${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}

seeds() {  # the fixture files each target starts from
  case "$NAME" in
    safetensors) ls tests/data/bad/safetensors/* tests/data/bad/checkpoints/*/*.safetensors ;;
    model_config) ls tests/data/*/config.json tests/data/shapes/*.json tests/data/bad/configs/* ;;
    tokenizer_json) ls tests/data/tiny-pythia/tokenizer.json tests/data/bad/tokenizers/* ;;
    tokenizer_encode) : ;;
    dolly) ls tests/data/bad/datasets/dolly-* && head -c 20000 tests/data/datasets/dolly-sample.jsonl \
             >"$CORPUS/dolly-sample-head.jsonl" ;;
    alpaca) ls tests/data/bad/datasets/alpaca-* tests/data/datasets/alpaca-sample.json ;;
    *) echo "unknown fuzz target '$NAME'" >&2; exit 2 ;;
  esac
}

if ! command -v clang++ >/dev/null; then
  echo "needs clang and libFuzzer: apt-get install -y clang libclang-rt-14-dev" >&2; exit 2
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DLLMHOST_SANITIZE=address,undefined -DLLMHOST_FUZZ=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "fuzz_$NAME"

CORPUS="$BUILD_DIR/fuzz-corpus/$NAME"
ARTIFACTS="$BUILD_DIR/fuzz-artifacts/$NAME"
mkdir -p "$CORPUS" "$ARTIFACTS"
for f in $(seeds); do cp -f "$f" "$CORPUS/$(echo "$f" | tr / _)"; done
EXTRA=()
[ -d "tests/fuzz/seeds/$NAME" ] && EXTRA+=("tests/fuzz/seeds/$NAME")
[ -d "tests/fuzz/regressions/$NAME" ] && EXTRA+=("tests/fuzz/regressions/$NAME")

# LibTorch is not instrumented: its one-time allocations look like leaks to LeakSanitizer.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LLMHOST_FUZZ_TMP=${LLMHOST_FUZZ_TMP:-/dev/shm}
# clang links libFuzzer's -lstdc++ ahead of the shared ASan runtime, and ASan insists on coming
# first in the library list (else it aborts at start-up): preload it.
ASAN_RUNTIME=$(clang++ -print-file-name=libclang_rt.asan-x86_64.so)
LD_PRELOAD="$ASAN_RUNTIME${LD_PRELOAD:+:$LD_PRELOAD}" "$BUILD_DIR/fuzz/fuzz_$NAME" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=20 \
  -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" "$CORPUS" "${EXTRA[@]}"
