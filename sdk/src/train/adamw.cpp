#include "llm/train/adamw.hpp"

#include <cmath>
#include <map>

#include <torch/torch.h>

#include "llm/error.hpp"

namespace llm {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> parameters, AdamWSettings settings)
    : params_(std::move(parameters)), settings_(settings) {
  for (const auto& [name, p] : params_) {
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
  }
}

namespace {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
#define LLM_HAVE_FUSED_ADAMW 1
// The fused CUDA kernel takes every tensor in one launch instead of ~8 launches per tensor; it
// computes the same update (decay, moments, bias corrections from the step count on the device).
bool can_fuse(const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  for (const auto& [name, p] : params) {
    if (!p.is_cuda() || p.scalar_type() != torch::kFloat || !p.grad().defined() ||
        p.device() != params.front().second.device()) {
      return false;
    }
  }
  return !params.empty();
}
#endif

}  // namespace

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
#ifdef LLM_HAVE_FUSED_ADAMW
  if (can_fuse(params_)) {
    std::vector<torch::Tensor> params;
    std::vector<torch::Tensor> grads;
    for (const auto& [name, p] : params_) {
      params.push_back(p);
      grads.push_back(p.grad());
    }
    // Counted on the device (incremented, never set from the host), so a captured step that is
    // replayed advances it too (steps_taken(), on the host, does not see replays).
    if (!step_count_.defined()) {
      step_count_ = torch::full({1}, static_cast<double>(step_ - 1),
                                params.front().options().dtype(torch::kFloat));
    }
    step_count_.add_(1);
    // One step tensor per parameter, all the same one: the kernel only reads it.
    const std::vector<torch::Tensor> steps(params.size(), step_count_);
    at::_fused_adamw_(params, grads, exp_avg_, exp_avg_sq_, {}, steps, lr, settings_.beta1,
                      settings_.beta2, settings_.weight_decay, settings_.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
    return;
  }
  step_count_ = torch::Tensor();  // a written-out step: the next fused one recounts from step_
#endif
  const double bias1 = 1.0 - std::pow(settings_.beta1, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(settings_.beta2, static_cast<double>(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    const auto& grad = p.grad();
    if (!grad.defined()) continue;
    p.mul_(1.0 - lr * settings_.weight_decay);
    exp_avg_[i].mul_(settings_.beta1).add_(grad, 1.0 - settings_.beta1);
    exp_avg_sq_[i].mul_(settings_.beta2).addcmul_(grad, grad, 1.0 - settings_.beta2);
    const auto denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bias2)).add_(settings_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bias1);
  }
}

void AdamW::zero_grad() {
#ifdef LLM_HAVE_FUSED_ADAMW
  if (can_fuse(params_)) {
    // One multi-tensor launch instead of one fill per LoRA factor (128 a step at Llama 2 7B).
    std::vector<torch::Tensor> grads;
    for (auto& [name, p] : params_) grads.push_back(p.mutable_grad());
    at::_foreach_zero_(grads);
    return;
  }
#endif
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("exp_avg/" + params_[i].first, exp_avg_[i]);
    out.emplace_back("exp_avg_sq/" + params_[i].first, exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       int64_t steps_taken, const std::string& source) {
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  auto restore = [&](const std::string& name, torch::Tensor& target) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) throw UserError(source + ": missing optimizer tensor '" + name + "'");
    if (it->second.sizes() != target.sizes()) {
      throw UserError(source + ": optimizer tensor '" + name + "' has the wrong shape");
    }
    torch::NoGradGuard no_grad;
    target.copy_(it->second);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    restore("exp_avg/" + params_[i].first, exp_avg_[i]);
    restore("exp_avg_sq/" + params_[i].first, exp_avg_sq_[i]);
  }
  step_ = steps_taken;
  step_count_ = torch::Tensor();  // recreated from step_ by the next fused step
}

}  // namespace llm
