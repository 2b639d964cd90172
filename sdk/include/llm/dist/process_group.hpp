#pragma once
// A c10d process group (Gloo on CPU, NCCL on CUDA) behind a small interface, so public headers do
// not pull c10d (its API differs between LibTorch 1.13 and 2.x).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "llm/dist/launch.hpp"
#include "llm/export.hpp"

namespace llm {

class LLM_API ProcessGroup {
 public:
  // Rendezvous over a TCPStore at launch.master_addr:master_port (rank 0 hosts it). Every wait
  // (rendezvous, collectives) is bounded by `timeout`; a rendezvous timeout throws UserError
  // naming the master address/port and the ranks that never arrived.
  static std::unique_ptr<ProcessGroup> connect(const LaunchInfo& launch,
                                               const torch::Device& device,
                                               std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int world_size() const;
  std::string backend() const;   // "gloo" | "nccl"
  torch::Device device() const;  // where collective buffers live

  // In-place sum across ranks. A peer that died or a timeout throws std::runtime_error naming
  // this rank and the operation.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const char* what);
  // Every rank reaches this point (bounded by the timeout).
  void barrier(const char* what);

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when this LibTorch build carries the backend the device needs (NCCL for CUDA, Gloo for CPU).
LLM_API bool process_group_backend_available(const torch::Device& device);

}  // namespace llm
