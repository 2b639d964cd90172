#include "llm/nn/parallel_block.hpp"

#include "fused_ops.hpp"

namespace llm {

ParallelBlockInputs parallel_block_inputs(const torch::Tensor& x, const LayerNormImpl& first,
                                          const LayerNormImpl& second) {
  if (first.eps != second.eps) {
    const int64_t dim = x.size(-1);
    return {torch::layer_norm(x, {dim}, first.weight, first.bias, first.eps),
            torch::layer_norm(x, {dim}, second.weight, second.bias, second.eps), x};
  }
  auto [a, b, residual] =
      fused::layer_norm_pair(x, first.weight, first.bias, second.weight, second.bias, first.eps);
  return {a, b, residual};
}

torch::Tensor add_three(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {
  return fused::add_three(a, b, c);
}

}  // namespace llm
