#pragma once
// Device synchronisation and the CUDA caching allocator's peak, where this LibTorch has them.
#include <cstdint>
#include <optional>

#include <torch/types.h>

namespace llmhost_bench {

// Waits for queued device work, so a host clock read after it measures finished work.
void synchronize(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);
// Bytes allocated by the caching allocator at its peak since the last reset (what PyTorch's
// max_memory_allocated reports); empty on the CPU or without the allocator's statistics.
std::optional<int64_t> peak_memory_bytes(const torch::Device& device);
// Bytes allocated now (what PyTorch's memory_allocated reports); empty as above.
std::optional<int64_t> allocated_memory_bytes(const torch::Device& device);
// Returns cached, unused blocks to the driver, so the next shape starts from an empty pool.
void release_cached_memory(const torch::Device& device);

}  // namespace llmhost_bench
