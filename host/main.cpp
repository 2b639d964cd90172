#include <malloc.h>

#include "blas_kernels.hpp"
#include "cli.hpp"

int main(int argc, char** argv) {
  llmhost::rerun_with_avx2_blas_kernels_if_misdetected(argv);
  // LibTorch allocates and frees activation-sized blocks (100 KB to tens of MB) for every op.
  // glibc's defaults give the ones above its mmap threshold back with munmap and trim the heap top
  // once 128 KB+ is free, so the next op faults the same pages in again, zeroed by the kernel: on
  // the CPU demo that was ~200k page faults and ~18 % of the CPU time of an evaluation
  // (bench/NOTES.md, "CPU speed"). Keep blocks up to 32 MB (glibc's ceiling) on the heap, and
  // trim only past 256 MB free. Setting both also stops glibc's own threshold adjustment.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return llmhost::run_cli(argc, argv);
}
