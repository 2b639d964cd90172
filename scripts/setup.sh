#!/usr/bin/env bash
# Installs the Debian 12 packages llmhost builds against, only those missing.
set -euo pipefail

# LLMHOST_EXTERNAL_TORCH=1 (scripts/build.sh found a CUDA LibTorch): Debian's CPU LibTorch is not needed.
packages=(
  build-essential cmake ninja-build ccache
  # LibTorch's CPU matrix products go through libblas.so.3; without this, Debian resolves it to the
  # reference libblas3 (libtorch recommends OpenBLAS, but recommends are not installed), ~10x
  # slower on CPU training and evaluation (bench/NOTES.md, "CPU speed"). The OpenMP build shares
  # LibTorch's libgomp thread pool instead of starting threads of its own.
  libopenblas0-openmp
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libsentencepiece-dev nlohmann-json3-dev libgtest-dev libgloo-dev
  libutf8proc-dev libpcre2-dev
  libcurl4-openssl-dev libssl-dev
)

[ "${LLMHOST_EXTERNAL_TORCH:-0}" = 1 ] || packages+=(libtorch-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
