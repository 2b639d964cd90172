// The NF4 weight as a CompressedWeight: x W^T with W dequantized in forward, and again in
// backward, so no expanded weight outlives the matmul that used it.
#include <torch/torch.h>

#include "llm/nn/quantize.hpp"

namespace llm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void save(AutogradContext* ctx, const Nf4Tensor& q) {
  ctx->saved_data["packed"] = q.packed;
  ctx->saved_data["nested"] = q.nested();
  if (q.nested()) {
    ctx->saved_data["absmax_codes"] = q.absmax_codes;
    ctx->saved_data["absmax_scale"] = q.absmax_scale;
    ctx->saved_data["absmax_offset"] = q.absmax_offset;
  } else {
    ctx->saved_data["absmax"] = q.absmax;
  }
  ctx->saved_data["shape"] = q.shape;
}

Nf4Tensor restore(AutogradContext* ctx) {
  Nf4Tensor q;
  q.packed = ctx->saved_data["packed"].toTensor();
  if (ctx->saved_data["nested"].toBool()) {
    q.absmax_codes = ctx->saved_data["absmax_codes"].toTensor();
    q.absmax_scale = ctx->saved_data["absmax_scale"].toTensor();
    q.absmax_offset = ctx->saved_data["absmax_offset"].toTensor();
  } else {
    q.absmax = ctx->saved_data["absmax"].toTensor();
  }
  q.shape = ctx->saved_data["shape"].toIntVector();
  return q;
}

// The weight is frozen: the only gradient is x's, grad_y W, for which W is dequantized again.
// The frozen tensors ride in saved_data (not save_for_backward): nothing writes to them.
class Nf4Matmul : public torch::autograd::Function<Nf4Matmul> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const Nf4Tensor& q) {
    save(ctx, q);
    return torch::matmul(x, nf4_dequantize(q, x.scalar_type()).t());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto& grad_y = grad_outputs[0];
    const auto w = nf4_dequantize(restore(ctx), grad_y.scalar_type());
    return {torch::matmul(grad_y, w), torch::Tensor()};
  }
};

class Nf4Weight final : public CompressedWeight {
 public:
  explicit Nf4Weight(Nf4Tensor q) : shape_(q.shape) {
    packed_ = register_buffer("packed", q.packed);
    if (q.nested()) {
      absmax_codes_ = register_buffer("absmax_codes", q.absmax_codes);
      absmax_scale_ = register_buffer("absmax_scale", q.absmax_scale);
      absmax_offset_ = register_buffer("absmax_offset", q.absmax_offset);
    } else {
      absmax_ = register_buffer("absmax", q.absmax);
    }
  }

  torch::Tensor linear(const torch::Tensor& x) override { return Nf4Matmul::apply(x, current()); }
  torch::Tensor expand(torch::ScalarType dtype) override {
    return nf4_dequantize(current(), dtype);
  }
  std::string scheme() const override { return absmax_codes_.defined() ? "nf4-dq" : "nf4"; }

 private:
  // Module::to() moves buffers with set_data, so these members follow the module's device.
  Nf4Tensor current() const {
    Nf4Tensor q;
    q.shape = shape_;
    q.packed = packed_;
    q.absmax = absmax_;
    q.absmax_codes = absmax_codes_;
    q.absmax_scale = absmax_scale_;
    q.absmax_offset = absmax_offset_;
    return q;
  }

  std::vector<int64_t> shape_;
  torch::Tensor packed_, absmax_, absmax_codes_, absmax_scale_, absmax_offset_;
};

}  // namespace

std::shared_ptr<CompressedWeight> make_nf4_weight(Nf4Tensor quantized) {
  return std::make_shared<Nf4Weight>(std::move(quantized));
}

}  // namespace llm
