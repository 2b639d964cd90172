#include "cuda_memory.hpp"

#include <torch/cuda.h>

#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace llmhost_bench {
namespace {

int device_index(const torch::Device& device) { return device.has_index() ? device.index() : 0; }

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
#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
  if (device.is_cuda()) {
    synchronize(device);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_index(device));
    return static_cast<int64_t>(stats.allocated_bytes[0].peak);  // [0]: StatType::AGGREGATE
  }
#else
  (void)device;
#endif
  return std::nullopt;
}

std::optional<int64_t> allocated_memory_bytes(const torch::Device& device) {
#ifdef LLMHOST_HAVE_CUDA_ALLOCATOR_STATS
  if (device.is_cuda()) {
    synchronize(device);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_index(device));
    return static_cast<int64_t>(stats.allocated_bytes[0].current);
  }
#else
  (void)device;
#endif
  return std::nullopt;
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
