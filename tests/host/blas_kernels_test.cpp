// When llmhost runs itself again with OpenBLAS's AVX2 kernels (host/blas_kernels.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "blas_kernels.hpp"

namespace llmhost {
namespace {

// A null-terminated argv, as main gets it.
struct Argv {
  explicit Argv(std::vector<std::string> args) : strings(std::move(args)) {
    for (auto& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  char** get() { return pointers.data(); }
  std::vector<std::string> strings;
  std::vector<char*> pointers;
};

TEST(BlasKernels, GenericKernelsOnAnAvx2CpuRerunForARunThatComputes) {
  Argv finetune({"llmhost", "--task", "finetune", "--config", "x.json"});
  EXPECT_TRUE(should_rerun_for_blas_kernels("Prescott", true, finetune.get()));
  EXPECT_TRUE(should_rerun_for_blas_kernels("SANDYBRIDGE", true, finetune.get()));
}

TEST(BlasKernels, KernelsThatFitTheCpuOrACpuWithoutAvx2StayAsTheyAre) {
  Argv evaluate({"llmhost", "--task", "evaluate"});
  for (const char* fitting : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}) {
    EXPECT_FALSE(should_rerun_for_blas_kernels(fitting, true, evaluate.get())) << fitting;
  }
  EXPECT_FALSE(should_rerun_for_blas_kernels("Prescott", false, evaluate.get()));
  EXPECT_FALSE(should_rerun_for_blas_kernels(nullptr, true, evaluate.get()));
}

TEST(BlasKernels, HelpAndListComputeNothingAndStartOnce) {
  Argv help({"llmhost", "--task", "finetune", "--help"});
  Argv list({"llmhost", "--task", "list"});
  Argv list_equals({"llmhost", "--task=list", "--format", "json"});
  for (auto* argv : {&help, &list, &list_equals}) {
    EXPECT_FALSE(should_rerun_for_blas_kernels("Prescott", true, argv->get()));
  }
}

}  // namespace
}  // namespace llmhost
