#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 900
