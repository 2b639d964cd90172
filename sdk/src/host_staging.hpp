#pragma once
// Host tensors on their way to a device: a copy from pageable memory waits for the device's queue
// to drain; from page-locked memory it is queued, and the host goes on preparing the step
// (bench/NOTES.md, session 5).
#include <torch/torch.h>

namespace llm {

// `host` as a copy to `device` should read it: page-locked for a device, as it is for the CPU.
inline torch::Tensor staged_for(const torch::Tensor& host, const torch::Device& device) {
  return device.is_cpu() ? host : host.pin_memory();
}

// Copies `host` into `target` (on any device) without waiting for the device.
inline void copy_from_host(torch::Tensor& target, const torch::Tensor& host) {
  target.copy_(staged_for(host, target.device()), /*non_blocking=*/true);
}

}  // namespace llm
