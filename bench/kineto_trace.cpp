#include "kineto_trace.hpp"

#include <iostream>
#include <set>

#include <torch/torch.h>

#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

namespace llmhost_bench {

#if TORCH_VERSION_MAJOR >= 2
namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

}  // namespace

KinetoTrace::KinetoTrace(std::string path) : path_(std::move(path)) {
  const ProfilerConfig config(ProfilerState::KINETO);
  std::set<ActivityType> activities{ActivityType::CPU};
  if (torch::cuda::is_available()) activities.insert(ActivityType::CUDA);
  try {
    profiler::prepareProfiler(config, activities);
    profiler::enableProfiler(config, activities);
    active_ = true;
  } catch (const std::exception& e) {
    std::cerr << "profile: cannot start Kineto: " << e.what() << "\n";
  }
}

KinetoTrace::~KinetoTrace() {
  if (!active_) return;
  try {
    profiler::disableProfiler()->save(path_);
    std::cerr << "profile: wrote " << path_ << "\n";
  } catch (const std::exception& e) {
    std::cerr << "profile: cannot save " << path_ << ": " << e.what() << "\n";
  }
}

#else

KinetoTrace::KinetoTrace(std::string path) : path_(std::move(path)) {
  std::cerr << "profile: needs LibTorch 2.x (Kineto); no trace for " << path_ << "\n";
}

KinetoTrace::~KinetoTrace() = default;

#endif

}  // namespace llmhost_bench
