#pragma once
// The trainer's GradientReducer over a c10d process group: the trainable gradients are flattened
// into one buffer per dtype (one bucket) and summed in a single all-reduce per optimizer step.
#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "llm/dist/process_group.hpp"
#include "llm/export.hpp"
#include "llm/train/trainer.hpp"

namespace llm {

class LLM_API DataParallelReducer : public GradientReducer {
 public:
  explicit DataParallelReducer(ProcessGroup& group) : group_(group) {}

  int rank() const override { return group_.rank(); }
  int world_size() const override { return group_.world_size(); }
  int64_t sum_tokens(int64_t local_tokens) override;
  void sum_gradients(const std::vector<torch::Tensor>& grads) override;
  void sum_values(std::vector<double>& values) override;
  void barrier(const char* what) override { group_.barrier(what); }

 private:
  ProcessGroup& group_;
};

}  // namespace llm
