#include "llm/loss.hpp"

namespace llm {

MaskedLoss masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels,
                                int64_t ignore_index) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                  logits.size(1) == labels.size(1),
              "masked_cross_entropy: logits [B, T, V] and labels [B, T] expected, got ",
              logits.sizes(), " and ", labels.sizes());
  const int64_t steps = logits.size(1) - 1;
  const int64_t vocab = logits.size(2);
  MaskedLoss result;
  if (steps <= 0) {
    result.sum = logits.sum().to(torch::kFloat) * 0;  // keeps the graph, contributes nothing
    result.mean = result.sum;
    return result;
  }
  const auto predictions = logits.narrow(1, 0, steps).reshape({-1, vocab}).to(torch::kFloat);
  const auto targets = labels.narrow(1, 1, steps).reshape({-1});
  result.sum = torch::nn::functional::cross_entropy(predictions, targets,
                                                    torch::nn::functional::CrossEntropyFuncOptions()
                                                        .ignore_index(ignore_index)
                                                        .reduction(torch::kSum));
  result.target_tokens = targets.ne(ignore_index).sum().item<int64_t>();
  result.mean = result.target_tokens > 0 ? result.sum / static_cast<double>(result.target_tokens)
                                         : result.sum * 0;
  return result;
}

}  // namespace llm
