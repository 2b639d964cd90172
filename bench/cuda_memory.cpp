#include "cuda_memory.hpp"

#include <torch/cuda.h>

#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace llmhost_bench {
namespace {

int device_index(const torch::Device& device) { return device.has_index() ? device.index() : 0; }

// The caching allocator's aggregate allocated-bytes statistic (its peak, or the current value).
std::optional<int64_t> allocated_stat(const torch::Device& device, bool peak) {
#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
  if (device.is_cuda()) {
    synchronize(device);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_index(device));
    const auto& allocated = stats.allocated_bytes[0];  // [0]: StatType::AGGREGATE
    return static_cast<int64_t>(peak ? allocated.peak : allocated.current);
  }
#else
  (void)device, (void)peak;
#endif
  return std::nullopt;
}

}  // namespace

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device_index(device));
}

void reset_peak_memory(const torch::Device& device) {
#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
  if (device.is_cuda()) {
    synchronize(device);
    c10::cuda::CUDACachingAllocator::resetPeakStats(device_index(device));
  }
#else
  (void)device;
#endif
}

std::optional<int64_t> peak_memory_bytes(const torch::Device& device) {
  return allocated_stat(device, /*peak=*/true);
}

std::optional<int64_t> allocated_memory_bytes(const torch::Device& device) {
  return allocated_stat(device, /*peak=*/false);
}

void release_cached_memory(const torch::Device& device) {
#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
  if (device.is_cuda()) {
    synchronize(device);
    c10::cuda::CUDACachingAllocator::emptyCache();
  }
#else
  (void)device;
#endif
}

}  // namespace llmhost_bench
