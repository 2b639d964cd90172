#include "blas_kernels.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <string>

namespace llmhost {
namespace {

// OpenBLAS's names of kernels older than AVX2 + FMA.
bool is_pre_avx2_core(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::array<const char*, 17> kOld = {
      "katmai",       "coppermine", "northwood",  "prescott",  "banias",      "atom",
      "core2",        "penryn",     "dunnington", "nehalem",   "sandybridge", "opteron",
      "opteron_sse3", "barcelona",  "bobcat",     "bulldozer", "piledriver"};
  return std::any_of(kOld.begin(), kOld.end(), [&](const char* old) { return name == old; });
}

// --help and --task list compute nothing: a second start-up would only slow them.
bool computes_nothing(char** argv) {
  for (int i = 1; argv[i] != nullptr; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--task=list") return true;
    if (arg == "--task" && argv[i + 1] != nullptr && std::string(argv[i + 1]) == "list")
      return true;
  }
  return false;
}

}  // namespace

bool should_rerun_for_blas_kernels(const char* core_name, bool cpu_has_avx2_fma, char** argv) {
  return core_name != nullptr && is_pre_avx2_core(core_name) && cpu_has_avx2_fma &&
         !computes_nothing(argv);
}

void rerun_with_avx2_blas_kernels_if_misdetected(char** argv) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice, or our rerun
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core_name == nullptr) return;  // not OpenBLAS
  __builtin_cpu_init();
  const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!should_rerun_for_blas_kernels(core_name(), avx2_fma, argv)) return;
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");  // exec failed: carry on with the kernels already loaded
#else
  (void)argv;
#endif
}

}  // namespace llmhost
