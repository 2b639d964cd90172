#include "llm/train/loss_scaler.hpp"

#include <cmath>

#include <torch/torch.h>

#include "llm/error.hpp"

namespace llm {

LossScaler::LossScaler(LossScalerSettings settings)
    : settings_(settings), scale_(settings.initial_scale) {
  if (!(settings_.initial_scale > 0) || !std::isfinite(settings_.initial_scale)) {
    throw UserError("loss scaling: the initial scale must be a positive finite number");
  }
  if (settings_.growth_interval < 1) {
    throw UserError("loss scaling: the growth interval must be at least 1 step");
  }
}

bool LossScaler::unscale(const std::vector<torch::Tensor>& grads) const {
  torch::NoGradGuard no_grad;
  torch::Tensor non_finite;
  const double inverse = 1.0 / scale_;
  for (const auto& g : grads) {
    if (!g.defined()) continue;
    g.mul_(inverse);
    // An inf or NaN survives the multiplication, so checking after it catches both.
    const auto bad = torch::logical_not(torch::isfinite(g)).any();
    non_finite = non_finite.defined() ? torch::logical_or(non_finite, bad) : bad;
  }
  return !non_finite.defined() || !non_finite.item<bool>();
}

void LossScaler::update(bool grads_finite) {
  if (!grads_finite) {
    scale_ *= settings_.backoff_factor;
    growth_tracker_ = 0;
    ++skipped_steps_;
    return;
  }
  if (++growth_tracker_ >= settings_.growth_interval) {
    const double grown = scale_ * settings_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;  // as GradScaler: never grow to inf
    growth_tracker_ = 0;
  }
}

Json LossScaler::state() const {
  return Json{
      {"scale", scale_}, {"growth_tracker", growth_tracker_}, {"skipped_steps", skipped_steps_}};
}

void LossScaler::load_state(const Json& state, const std::string& source) {
  if (!state.is_object() || !state.contains("scale") || !state["scale"].is_number() ||
      !state.contains("growth_tracker") || !state["growth_tracker"].is_number_integer() ||
      !state.contains("skipped_steps") || !state["skipped_steps"].is_number_integer()) {
    throw UserError(source +
                    ": loss_scaler must be an object with scale, growth_tracker and skipped_steps");
  }
  const double scale = state["scale"].get<double>();
  if (!(scale > 0) || !std::isfinite(scale)) {
    throw UserError(source + ": loss_scaler.scale must be a positive finite number");
  }
  scale_ = scale;
  growth_tracker_ = state["growth_tracker"].get<int64_t>();
  skipped_steps_ = state["skipped_steps"].get<int64_t>();
}

}  // namespace llm
