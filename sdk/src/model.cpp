#include "llm/model.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "llm/error.hpp"
#include "llm/nn/activation_checkpoint.hpp"
#include "llm/safetensors.hpp"

namespace llm {
namespace {

std::string shape_text(torch::IntArrayRef shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The file a missing tensor should have been in, for the error message.
std::filesystem::path weights_file(const std::filesystem::path& dir) {
  const auto index = dir / "model.safetensors.index.json";
  return std::filesystem::exists(index) ? index : dir / "model.safetensors";
}

// Tied weights (lm_head sharing the embedding) are two parameters over one storage.
bool same_storage(const torch::Tensor& a, const torch::Tensor& b) {
  return a.data_ptr() == b.data_ptr() && a.sizes() == b.sizes();
}

}  // namespace

bool CausalLM::ignores_checkpoint_tensor(const std::string& name) const {
  // Buffers older transformers saved: rotary tables and the causal-mask constants.
  return ends_with(name, "rotary_emb.inv_freq") || ends_with(name, ".attention.bias") ||
         ends_with(name, ".attention.masked_bias");
}

torch::Tensor CausalLM::forward(const torch::Tensor& input_ids, KVCache* cache) {
  return output_head()(hidden_states(input_ids, cache));
}

torch::Tensor CausalLM::packed_hidden_states(const torch::Tensor&, const PackedSequences&) {
  throw UserError(config().source + ": model type '" + config().model_type +
                  "' does not support packed sequences (--packing)");
}

MaskedLoss CausalLM::next_token_loss(const torch::Tensor& input_ids, const torch::Tensor& labels,
                                     int64_t ignore_index, const PackedSequences* packing) {
  const auto hidden =
      packing ? packed_hidden_states(input_ids, *packing) : hidden_states(input_ids, nullptr);
  auto& head = output_head();
  const bool plain_frozen_head = !head->adapter() && !head->compressed_weight() &&
                                 !head->bias.defined() && !head->weight.requires_grad();
  if (!plain_frozen_head) return masked_cross_entropy(head(hidden), labels, ignore_index);
  return masked_next_token_loss(hidden, head->weight, labels, ignore_index);
}

torch::Tensor CausalLM::run_block(torch::nn::Module& block, const torch::Tensor& x,
                                  const KVCache* cache,
                                  std::function<torch::Tensor(const torch::Tensor&)> call) {
  if (!activation_checkpointing_ || cache != nullptr || !is_training()) return call(x);
  return checkpointed_block(std::move(call), x, block.parameters());
}

KVCache CausalLM::make_cache(int64_t batch, int64_t capacity) const {
  const auto& c = config();
  return KVCache(c.num_layers, batch, c.num_kv_heads, capacity, c.head_dim,
                 torch::TensorOptions().dtype(dtype()).device(device()));
}

torch::Device CausalLM::device() const {
  // output_head() is non-const only because it hands out a mutable module.
  return const_cast<CausalLM*>(this)->output_head()->weight.device();
}

torch::ScalarType CausalLM::dtype() const {
  return const_cast<CausalLM*>(this)->output_head()->weight.scalar_type();
}

void ModelFamily::validate(const ModelConfig&) const {}

Json ModelFamily::settings(const ModelConfig&) const { return Json::object(); }

bool ModelFamily::recognises(const ModelConfig& config) const {
  const auto types = model_types();
  if (std::find(types.begin(), types.end(), config.model_type) != types.end()) return true;
  const auto names = architectures();
  return std::any_of(config.architectures.begin(), config.architectures.end(),
                     [&](const std::string& a) {
                       return std::find(names.begin(), names.end(), a) != names.end();
                     });
}

void load_weights(CausalLM& model, const std::filesystem::path& checkpoint_dir) {
  const auto checkpoint = SafetensorsCheckpoint::open(checkpoint_dir);
  const auto parameters = model.named_parameters(/*recurse=*/true);
  std::set<std::string> expected;
  std::vector<torch::Tensor> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& item : parameters) {
    const auto& name = item.key();
    auto parameter = item.value();
    expected.insert(name);
    if (!checkpoint.contains(name)) {
      const bool tied = std::any_of(parameters.begin(), parameters.end(), [&](const auto& other) {
        return other.key() != name && checkpoint.contains(other.key()) &&
               same_storage(other.value(), parameter);
      });
      if (tied) continue;
      throw UserError(weights_file(checkpoint_dir).string() + ": missing tensor '" + name +
                      "' (expected shape " + shape_text(parameter.sizes()) + ")");
    }
    const auto& info = checkpoint.info(name);
    const auto& file = checkpoint.file_of(name).string();
    if (torch::IntArrayRef(info.shape) != parameter.sizes()) {
      throw UserError(file + ": tensor '" + name + "' has shape " + shape_text(info.shape) +
                      ", expected " + shape_text(parameter.sizes()) + " from config.json");
    }
    if (!torch::isFloatingType(info.dtype)) {
      throw UserError(file + ": tensor '" + name + "' has dtype " +
                      safetensors_dtype_name(info.dtype) + ", expected a floating-point type");
    }
    // One cast+copy from the mapping straight into the parameter's dtype and device.
    parameter.copy_(checkpoint.tensor(name));
  }
  for (const auto& name : checkpoint.names()) {
    if (expected.count(name) || model.ignores_checkpoint_tensor(name)) continue;
    throw UserError(checkpoint.file_of(name).string() + ": unexpected tensor '" + name +
                    "' (the model built from config.json has no such parameter)");
  }
}

void random_init(CausalLM& model, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);  // seeds the CPU and every CUDA generator
  const auto& config = model.config();
  const double std = json_number_or(config.raw, "initializer_range", 0.02, config.source);
  // As Hugging Face's _init_weights: matrices (linear, embedding) ~ N(0, std); 1-d parameters are
  // norm weights (1) or biases (0).
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    auto parameter = item.value();
    if (parameter.dim() >= 2) {
      parameter.normal_(0.0, std);
    } else if (ends_with(item.key(), "bias")) {
      parameter.zero_();
    } else {
      parameter.fill_(1.0);
    }
  }
}

}  // namespace llm
