#include "llm/loss.hpp"

#include <algorithm>

#include "nn/fused_ops.hpp"

namespace llm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Default rows per block: fp32 temporaries of about 64 M elements (256 MB) whatever the vocabulary.
int64_t default_rows_per_block(int64_t vocab) {
  return std::max<int64_t>(1, (int64_t{64} << 20) / std::max<int64_t>(vocab, 1));
}

// The fused head keeps one fp32 block alive at the end of the forward pass, where every saved
// activation is alive too: 16 M elements (64 MB), still hundreds of rows per GEMM at 50k words.
int64_t default_head_rows_per_block(int64_t vocab) {
  return std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(vocab, 1));
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

// The output head's product and the cross-entropy, a block of rows at a time, so no [N, V]
// logits exist at once, only one block's (the unfused path keeps [N, V] logits for backward and
// writes an [N, V] gradient). With the head frozen, the only gradient wanted is the hidden
// states': computed here block by block in the same arithmetic as the unfused backward
// (softmax - onehot in fp32, rounded to the logits' dtype, times W), kept [N, H], and scaled by the
// incoming gradient in backward.
class LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& targets,
                               int64_t ignore_index, int64_t block) {
    const int64_t rows = hidden.size(0);
    const bool want_grad = hidden.requires_grad();
    const auto f32 = hidden.options().dtype(torch::kFloat);
    if (fused::cross_entropy_kernel_applies(hidden)) {
      const auto [loss, grad_hidden] = blocks_in_one_kernel(hidden, weight, targets.contiguous(),
                                                            ignore_index, block, want_grad);
      ctx->save_for_backward({grad_hidden});
      return loss;
    }
    const auto valid = targets.ne(ignore_index);
    const auto safe_targets = targets.masked_fill(valid.logical_not(), 0);
    auto total = torch::zeros({}, f32);
    torch::Tensor grad_hidden = want_grad ? torch::empty_like(hidden) : torch::Tensor();
    for (int64_t start = 0; start < rows; start += block) {
      const int64_t length = std::min(block, rows - start);
      const auto target = safe_targets.narrow(0, start, length).unsqueeze(1);
      const auto keep = valid.narrow(0, start, length);
      auto logits = torch::matmul(hidden.narrow(0, start, length), weight.t()).to(torch::kFloat);
      const auto lse = logits.logsumexp(-1);
      const auto row_loss = lse - logits.gather(1, target).squeeze(1);
      total.add_(torch::where(keep, row_loss, torch::zeros({}, f32)).sum());
      if (!want_grad) continue;
      auto& p = logits.sub_(lse.unsqueeze(1)).exp_();  // in place: one fp32 block alive
      p.scatter_add_(1, target, torch::full({length, 1}, -1.0, p.options()));
      p.mul_(keep.unsqueeze(1).to(torch::kFloat));
      grad_hidden.narrow(0, start, length).copy_(torch::matmul(p.to(hidden.scalar_type()), weight));
    }
    ctx->save_for_backward({grad_hidden});
    return total;
  }

  // CUDA: per block of rows, the product, one kernel for the loss and the logits' gradient (in
  // place), and the gradient's product with W written into its rows of grad_hidden. Returns the
  // summed loss and grad_hidden (undefined without want_grad).
  static std::pair<torch::Tensor, torch::Tensor> blocks_in_one_kernel(
      const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
      int64_t ignore_index, int64_t block, bool want_grad) {
    const int64_t rows = hidden.size(0);
    auto row_loss = torch::empty({rows}, hidden.options().dtype(torch::kFloat));
    torch::Tensor grad_hidden =
        want_grad ? torch::empty(hidden.sizes(), hidden.options()) : torch::Tensor();
    for (int64_t start = 0; start < rows; start += block) {
      const int64_t length = std::min(block, rows - start);
      const auto logits = torch::matmul(hidden.narrow(0, start, length), weight.t()).contiguous();
      fused::cross_entropy_rows(logits, targets.narrow(0, start, length), ignore_index,
                                row_loss.narrow(0, start, length), want_grad);
      if (!want_grad) continue;
      auto rows_out = grad_hidden.narrow(0, start, length);
      torch::mm_out(rows_out, logits, weight);
    }
    return {row_loss.sum(), grad_hidden};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto grad_hidden = ctx->get_saved_variables()[0];
    return {grad_hidden * grad_outputs[0], torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

// The next-token shift both masked losses share: rows[:, :-1] (logits or hidden states,
// [B, T, X]) predict labels[:, 1:]; `summed(rows [N, X], targets [N])` gives the summed loss.
template <typename Summed>
MaskedLoss shifted_masked_loss(const torch::Tensor& rows, const torch::Tensor& labels,
                               int64_t ignore_index, Summed summed) {
  const int64_t steps = rows.size(1) - 1;
  MaskedLoss result;
  if (steps <= 0) {
    result.sum = rows.sum().to(torch::kFloat) * 0;  // keeps the graph, contributes nothing
    result.mean = result.sum;
    result.target_tokens = torch::zeros({}, labels.options());
    return result;
  }
  const auto targets = labels.narrow(1, 1, steps).reshape({-1});
  result.sum = summed(rows.narrow(1, 0, steps).reshape({-1, rows.size(2)}), targets);
  // Counted on the device: reading it here would stall the host once per step.
  result.target_tokens = targets.ne(ignore_index).sum();
  result.mean = result.sum / result.target_tokens.clamp_min(1).to(torch::kFloat);
  return result;
}

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
  return shifted_masked_loss(logits, labels, ignore_index,
                             [&](const torch::Tensor& predictions, const torch::Tensor& targets) {
                               return summed_cross_entropy(predictions, targets, ignore_index);
                             });
}

torch::Tensor summed_linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                          const torch::Tensor& targets, int64_t ignore_index,
                                          int64_t rows_per_block) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 &&
                  hidden.size(0) == targets.size(0) && hidden.size(1) == weight.size(1),
              "summed_linear_cross_entropy: hidden [N, H], weight [V, H] and targets [N] expected, "
              "got ",
              hidden.sizes(), ", ", weight.sizes(), " and ", targets.sizes());
  TORCH_CHECK(!weight.requires_grad(),
              "summed_linear_cross_entropy: the head's weight must be frozen (no gradient for it)");
  const int64_t block =
      rows_per_block > 0 ? rows_per_block : default_head_rows_per_block(weight.size(0));
  return LinearCrossEntropy::apply(hidden, weight, targets, ignore_index, block);
}

MaskedLoss masked_next_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                                  const torch::Tensor& labels, int64_t ignore_index) {
  TORCH_CHECK(hidden.dim() == 3 && labels.dim() == 2 && hidden.size(0) == labels.size(0) &&
                  hidden.size(1) == labels.size(1),
              "masked_next_token_loss: hidden [B, T, H] and labels [B, T] expected, got ",
              hidden.sizes(), " and ", labels.sizes());
  return shifted_masked_loss(hidden, labels, ignore_index,
                             [&](const torch::Tensor& predictors, const torch::Tensor& targets) {
                               return summed_linear_cross_entropy(predictors, weight, targets,
                                                                  ignore_index);
                             });
}

}  // namespace llm
