#include "llm/loss.hpp"

#include <algorithm>

namespace llm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Default rows per block: fp32 temporaries of about 64 M elements (256 MB) whatever the vocabulary.
int64_t default_rows_per_block(int64_t vocab) {
  return std::max<int64_t>(1, (int64_t{64} << 20) / std::max<int64_t>(vocab, 1));
}

// Cross-entropy summed over the rows whose target is not ignored, in fp32, a block of rows at a
// time. Unlike log_softmax + nll_loss over an fp32 copy, it keeps no fp32 [N, V] tensor for
// backward (only the logits in their own dtype and one log-sum-exp per row), and backward writes
// the gradient in the logits' dtype directly: at a 50k vocabulary and 4k rows that is ~1.6 GB of
// memory and as much memory traffic less per step.
class BlockedCrossEntropy : public torch::autograd::Function<BlockedCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, int64_t ignore_index, int64_t block) {
    const int64_t rows = logits.size(0);
    const auto f32 = logits.options().dtype(torch::kFloat);
    const auto valid = targets.ne(ignore_index);
    const auto safe_targets = targets.masked_fill(valid.logical_not(), 0);  // gather needs a row
    auto lse = torch::empty({rows}, f32);
    auto total = torch::zeros({}, f32);
    for (int64_t start = 0; start < rows; start += block) {
      const int64_t length = std::min(block, rows - start);
      const auto chunk = logits.narrow(0, start, length).to(torch::kFloat);
      const auto chunk_lse = chunk.logsumexp(-1);
      lse.narrow(0, start, length).copy_(chunk_lse);
      const auto picked = chunk.gather(1, safe_targets.narrow(0, start, length).unsqueeze(1));
      const auto row_loss = chunk_lse - picked.squeeze(1);
      total.add_(
          torch::where(valid.narrow(0, start, length), row_loss, torch::zeros({}, f32)).sum());
    }
    ctx->save_for_backward({logits, safe_targets, valid, lse});
    ctx->saved_data["block"] = block;
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& logits = saved[0];
    const auto& targets = saved[1];
    const auto& valid = saved[2];
    const auto& lse = saved[3];
    const auto grad = grad_outputs[0].to(torch::kFloat);
    const int64_t rows = logits.size(0);
    const int64_t block = ctx->saved_data["block"].toInt();
    auto grad_logits = torch::empty_like(logits);
    for (int64_t start = 0; start < rows; start += block) {
      const int64_t length = std::min(block, rows - start);
      // d/dlogits = softmax - onehot(target), zero on ignored rows, times the incoming gradient.
      auto p = (logits.narrow(0, start, length).to(torch::kFloat) -
                lse.narrow(0, start, length).unsqueeze(1))
                   .exp_();
      const auto target = targets.narrow(0, start, length).unsqueeze(1);
      p.scatter_add_(1, target, torch::full({length, 1}, -1.0, p.options()));
      p.mul_(valid.narrow(0, start, length).unsqueeze(1).to(torch::kFloat) * grad);
      grad_logits.narrow(0, start, length).copy_(p);
    }
    return {grad_logits, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor summed_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                   int64_t ignore_index, int64_t rows_per_block) {
  TORCH_CHECK(logits.dim() == 2 && targets.dim() == 1 && logits.size(0) == targets.size(0),
              "summed_cross_entropy: logits [N, V] and targets [N] expected, got ", logits.sizes(),
              " and ", targets.sizes());
  const int64_t block =
      rows_per_block > 0 ? rows_per_block : default_rows_per_block(logits.size(1));
  return BlockedCrossEntropy::apply(logits, targets, ignore_index, block);
}

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
    result.target_tokens = torch::zeros({}, labels.options());
    return result;
  }
  const auto predictions = logits.narrow(1, 0, steps).reshape({-1, vocab});
  const auto targets = labels.narrow(1, 1, steps).reshape({-1});
  result.sum = summed_cross_entropy(predictions, targets, ignore_index);
  // Counted on the device: reading it here would stall the host once per step.
  result.target_tokens = targets.ne(ignore_index).sum();
  result.mean = result.sum / result.target_tokens.clamp_min(1).to(torch::kFloat);
  return result;
}

}  // namespace llm
