#!/bin/bash
# Static SASS counts of a .cu file's kernels and loops for sm_90, without a GPU:
#   scripts/sass-loop-counts.sh sdk/src/nn/low_rank_kernels.cu [NAME-SUBSTRING]
# The toolkit's nvcc (CUDA >= 12, here /usr/local/cuda) writes the PTX and says each kernel's
# registers and spills. Its cubins are not readable by the only disassembler Debian ships (CUDA
# 11.8's nvdisasm, package nvidia-cuda-toolkit in non-free), so that package's ptxas assembles the
# same PTX (its .version lowered to 7.8, which sm_90 needs; the file must use nothing newer) and
# its nvdisasm prints it. Counts from ptxas 11.8 are a proxy: the GPU machine's ptxas schedules the
# same PTX, but may allocate and unroll somewhat differently. The .deb is fetched once into
# /tmp/cuda-11.8-tools (Debian's registry; nothing is installed, and apt's own lists and cache
# are left alone: the non-free index goes to a folder of its own there).
set -euo pipefail
cd "$(dirname "$0")/.."
source_file=${1:?usage: scripts/sass-loop-counts.sh FILE.cu [NAME-SUBSTRING]}
filter=${2:-}
nvcc=${NVCC:-/usr/local/cuda/bin/nvcc}
tools=/tmp/cuda-11.8-tools
if [ ! -x "$tools/usr/bin/nvdisasm" ]; then
  mkdir -p "$tools"
  mkdir -p "$tools/apt/lists/partial" "$tools/apt/cache/archives/partial"
  echo "deb http://deb.debian.org/debian bookworm non-free" > "$tools/apt/sources.list"
  apt_private=(-o Dir::Etc::sourcelist="$tools/apt/sources.list" -o Dir::Etc::sourceparts=-
    -o Dir::State::Lists="$tools/apt/lists" -o Dir::Cache="$tools/apt/cache")
  apt-get update -qq "${apt_private[@]}" >/dev/null
  (cd "$tools" && apt-get download -qq "${apt_private[@]}" nvidia-cuda-toolkit 2>/dev/null &&
    dpkg-deb -x nvidia-cuda-toolkit_*.deb .)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$nvcc" -std=c++17 -arch=sm_90 -ptx -o "$work/k.ptx" -I sdk/include -I sdk/src "$source_file"
echo "registers and spills, ptxas $("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'):"
"$(dirname "$nvcc")/ptxas" -arch=sm_90 -v -o /dev/null "$work/k.ptx" 2>&1 | c++filt |
  awk -v want="$filter" '/Compiling entry/ {
      keep = index($0, want) > 0
      if (keep) { sub(/.*entry function \047/, ""); sub(/\047 for.*/, ""); print substr($0, 1, 110) }
      next
    }
    keep && /Used|spill/ { sub(/ptxas info *: /, "  "); print }'
sed 's/^\.version [0-9.]*/.version 7.8/' "$work/k.ptx" > "$work/k78.ptx"
"$tools/usr/bin/ptxas" -arch=sm_90 -o "$work/k.cubin" "$work/k78.ptx"
"$tools/usr/bin/nvdisasm" -c "$work/k.cubin" > "$work/k.sass"
python3 scripts/sass-loop-counts.py "$work/k.sass" "$filter"
