#include "llm/nn/activation_checkpoint.hpp"

#include <mutex>

#include <torch/torch.h>

namespace llm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides the saved input: the block and the RNG state it started from.
struct Recomputation : torch::CustomClassHolder {
  BlockFn block;
  std::vector<torch::Tensor> parameters;
  torch::Device device{torch::kCPU};
  torch::Tensor rng_state;
};

at::Generator generator_for(const torch::Device& device) {
  return at::globalContext().defaultGenerator(device.is_cuda() ? device
                                                               : torch::Device(torch::kCPU));
}

torch::Tensor rng_state(const torch::Device& device) {
  auto gen = generator_for(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  auto gen = generator_for(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               torch::TensorList parameters,
                               c10::intrusive_ptr<Recomputation> recompute) {
    recompute->device = x.device();
    recompute->rng_state = rng_state(x.device());
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    ctx->saved_data["parameters"] = static_cast<int64_t>(parameters.size());
    // Function::apply runs forward with grad mode off: nothing inside the block is kept.
    return recompute->block(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto holder = ctx->saved_data["recompute"].toCapsule();
    auto* recompute = static_cast<Recomputation*>(holder.get());
    const auto saved = ctx->get_saved_variables();
    const bool input_needs_grad = ctx->needs_input_grad(0);
    const auto x = saved[0].detach().requires_grad_(input_needs_grad);

    // Replay the forward's random draws (dropout), then put the caller's RNG back.
    const auto current_state = rng_state(recompute->device);
    set_rng_state(recompute->device, recompute->rng_state);
    torch::Tensor y;
    {
      torch::AutoGradMode enable(true);
      y = recompute->block(x);
    }
    set_rng_state(recompute->device, current_state);

    std::vector<torch::Tensor> inputs;
    if (input_needs_grad) inputs.push_back(x);
    for (const auto& p : recompute->parameters) inputs.push_back(p);
    const auto grads = torch::autograd::grad({y}, inputs, {grad_outputs[0]},
                                             /*retain_graph=*/false, /*create_graph=*/false,
                                             /*allow_unused=*/true);
    variable_list result;
    size_t next = 0;
    result.push_back(input_needs_grad ? grads[next++] : torch::Tensor());
    for (size_t i = 0; i < recompute->parameters.size(); ++i) result.push_back(grads[next++]);
    result.push_back(torch::Tensor());  // the Recomputation argument
    return result;
  }
};

}  // namespace

torch::Tensor checkpointed_block(BlockFn block, const torch::Tensor& x,
                                 const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> trainable;
  for (const auto& p : parameters) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  if (!torch::GradMode::is_enabled() || (trainable.empty() && !x.requires_grad())) return block(x);
  auto recompute = c10::make_intrusive<Recomputation>();
  recompute->block = std::move(block);
  recompute->parameters = trainable;
  return CheckpointFunction::apply(x, torch::TensorList(trainable), recompute);
}

}  // namespace llm
