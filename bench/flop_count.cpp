#include "flop_count.hpp"

namespace llmhost_bench {

double FlopModel::forward_per_token(int64_t context) const {
  const double attention = 2.0 * static_cast<double>(layers * hidden * context);
  return 2.0 * static_cast<double>(matmul_params) + attention;
}

double FlopModel::lora_train_per_token(int64_t context) const {
  return 2.0 * forward_per_token(context);
}

FlopModel flop_model(llm::CausalLM& model) {
  FlopModel f;
  const auto& config = model.config();
  f.layers = config.num_layers;
  f.hidden = config.hidden_size;
  for (const auto& layer : model.adaptable_linears()) {
    // NF4 layers have no weight.
    f.matmul_params += layer.linear->in_features() * layer.linear->out_features();
  }
  return f;
}

}  // namespace llmhost_bench
