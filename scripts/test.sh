#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + end-to-end), then the
# sanitizer subset under ASan+UBSan (scripts/test-sanitize.sh, its own build in build-san).
# The sanitizer subset runs even when the suite failed, so one failure never hides another; the
# script then fails if either did.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 900 || status=$?
# Measured on 2 cores: ~9 min to build build-san from nothing, ~1.5 min to run (README.md).
BUILD_DIR=${SANITIZE_BUILD_DIR:-build-san} scripts/test-sanitize.sh || status=$?
if [ "$status" -ne 0 ]; then
  echo "test.sh: FAILED (the log above names the failing tests)" >&2
fi
exit "$status"
