#pragma once

namespace llmhost {

// OpenBLAS (LibTorch's BLAS on Debian) picks its kernels from the CPU model when it loads, before
// main. A model it does not know (newer Xeons, CPUs a VM presents as a generic "Intel Xeon
// Processor") gets its SSE3 "Prescott" kernels: GEMMs 3-5x slower on a CPU with AVX2 and FMA.
// When that happened, this runs the program again with OPENBLAS_CORETYPE=Haswell (its AVX2
// kernels), once; otherwise (or for --help and --task list, or if the exec fails) it returns
// and the run goes on as it is.
// bench/NOTES.md ("CPU speed") has the measurement.
void rerun_with_avx2_blas_kernels_if_misdetected(char** argv);

// The decision: OpenBLAS chose `core_name` (openblas_get_corename()), the CPU has AVX2 and FMA or
// not, and argv (null-terminated) asks for a run that computes.
bool should_rerun_for_blas_kernels(const char* core_name, bool cpu_has_avx2_fma, char** argv);

}  // namespace llmhost
