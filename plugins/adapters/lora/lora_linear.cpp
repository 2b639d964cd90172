#include "lora_linear.hpp"

#include <cmath>

namespace llm_lora {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// delta = (dropout(x32) A^T) B^T * scaling in fp32, returned in x's dtype: the operations autograd
// would record, with the same arithmetic in backward, but saving x in its own dtype (shared by
// every adapter on the same input, e.g. q_proj and v_proj) and the dropout mask, not the fp32
// dropped copy of x that the second product would keep (at Llama 2 7B, 64 MB per adapted layer
// and micro-batch of 4k tokens). Backward recomputes that copy from x and the mask.
class LoraDelta : public torch::autograd::Function<LoraDelta> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& A,
                               const torch::Tensor& B, double scaling, double dropout) {
    const auto x32 = x.to(torch::kFloat);
    torch::Tensor h = x32;
    torch::Tensor mask;
    if (dropout > 0) std::tie(h, mask) = at::native_dropout(x32, dropout, true);
    const auto a = torch::matmul(h, A.t());
    ctx->save_for_backward({x, A, B, a, mask});
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["dropout"] = dropout;
    return (torch::matmul(a, B.t()) * scaling).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &A = saved[1], &B = saved[2], &a = saved[3], &mask = saved[4];
    const double scaling = ctx->saved_data["scaling"].toDouble();
    const double dropout = ctx->saved_data["dropout"].toDouble();
    const double keep_scale = dropout > 0 ? 1.0 / (1.0 - dropout) : 1.0;
    const auto g = grad_outputs[0].to(torch::kFloat) * scaling;
    const int64_t out = B.size(0), r = A.size(0), in = A.size(1);
    const auto g2 = g.reshape({-1, out});
    const auto grad_a = torch::matmul(g, B);
    torch::Tensor grad_A, grad_B, grad_x;
    if (ctx->needs_input_grad(2)) grad_B = torch::matmul(g2.t(), a.reshape({-1, r}));
    if (ctx->needs_input_grad(1)) {
      auto h = x.to(torch::kFloat);
      if (dropout > 0) h = at::native_dropout_backward(h, mask, keep_scale);  // x32 * mask * scale
      grad_A = torch::matmul(grad_a.reshape({-1, r}).t(), h.reshape({-1, in}));
    }
    if (ctx->needs_input_grad(0)) {
      auto grad_h = torch::matmul(grad_a, A);
      if (dropout > 0) grad_h = at::native_dropout_backward(grad_h, mask, keep_scale);
      grad_x = grad_h.to(x.scalar_type());
    }
    return {grad_x, grad_A, grad_B, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

LoraLinear::LoraLinear(const LoraShape& shape, const torch::Device& device, torch::Tensor row_mask)
    : shape_(shape),
      scaling_(shape.rslora ? shape.alpha / std::sqrt(static_cast<double>(shape.r))
                            : shape.alpha / static_cast<double>(shape.r)),
      row_mask_(std::move(row_mask)) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device);
  lora_A = register_parameter("lora_A", torch::empty({shape.r, shape.in_features}, options));
  lora_B = register_parameter("lora_B", torch::zeros({shape.out_features, shape.r}, options));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));
  if (row_mask_.defined()) row_mask_ = register_buffer("row_mask", row_mask_.to(options));
}

torch::Tensor LoraLinear::effective_B() const {
  return row_mask_.defined() ? lora_B * row_mask_.unsqueeze(1) : lora_B;
}

torch::Tensor LoraLinear::delta(const torch::Tensor& x) {
  const double dropout = is_training() ? shape_.dropout : 0.0;
  if (torch::GradMode::is_enabled()) {
    return LoraDelta::apply(x, lora_A, effective_B(), scaling_, dropout);
  }
  auto h = x.to(torch::kFloat);
  if (dropout > 0) h = std::get<0>(at::native_dropout(h, dropout, true));  // draws as above
  const auto out = torch::matmul(torch::matmul(h, lora_A.t()), effective_B().t()) * scaling_;
  return out.to(x.scalar_type());
}

}  // namespace llm_lora
