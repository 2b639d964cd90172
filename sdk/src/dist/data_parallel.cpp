#include "llm/dist/data_parallel.hpp"

#include <map>

#include <torch/torch.h>

namespace llm {

int64_t DataParallelReducer::sum_tokens(int64_t local_tokens) {
  std::vector<double> value{static_cast<double>(local_tokens)};
  sum_values(value);
  return static_cast<int64_t>(value[0]);
}

void DataParallelReducer::sum_gradients(const std::vector<torch::Tensor>& grads) {
  if (grads.empty()) return;
  torch::NoGradGuard no_grad;
  // One bucket per dtype: one collective instead of one per tensor (LoRA has hundreds of small
  // matrices, and per-call latency dominates at that size).
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (const auto& g : grads) by_dtype[g.scalar_type()].push_back(g);
  for (auto& [dtype, members] : by_dtype) {
    std::vector<torch::Tensor> flat_views;
    for (const auto& g : members) flat_views.push_back(g.reshape({-1}));
    std::vector<torch::Tensor> bucket{torch::cat(flat_views)};
    group_.all_reduce_sum(bucket, "all-reduce of the gradients");
    int64_t offset = 0;
    for (auto& g : members) {
      const int64_t n = g.numel();
      g.copy_(bucket[0].slice(0, offset, offset + n).view(g.sizes()));
      offset += n;
    }
  }
}

void DataParallelReducer::sum_values(std::vector<double>& values) {
  if (values.empty()) return;
  // fp64 on the group's device: NCCL needs device tensors; exact for token counts below 2^53.
  std::vector<torch::Tensor> buffer{torch::tensor(values, torch::kDouble).to(group_.device())};
  group_.all_reduce_sum(buffer, "all-reduce of step statistics");
  const auto host = buffer[0].to(torch::kCPU);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = host[static_cast<int64_t>(i)].item<double>();
}

}  // namespace llm
