// The "lora" adapter plugin: attach (train), load/save in PEFT's layout, merge.
#include <algorithm>
#include <cmath>
#include <set>

#include "llm/adapter.hpp"
#include "llm/atomic_file.hpp"
#include "llm/error.hpp"
#include "llm/model.hpp"
#include "llm/plugin.hpp"
#include "llm/safetensors.hpp"
#include "lora_linear.hpp"
#include "lora_options.hpp"
#include "lora_targets.hpp"
#include "peft_config.hpp"

namespace llm_lora {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSlotName = "lora";
constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

std::string peft_tensor_name(const std::string& module, const char* which) {
  return "base_model.model." + module + "." + which + ".weight";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<std::pair<std::string, std::shared_ptr<LoraLinear>>> attached(llm::CausalLM& model) {
  std::vector<std::pair<std::string, std::shared_ptr<LoraLinear>>> out;
  for (auto& layer : model.adaptable_linears()) {
    if (auto lora = std::dynamic_pointer_cast<LoraLinear>(layer.linear->adapter())) {
      out.emplace_back(layer.name, lora);
    }
  }
  return out;
}

class LoraAdapter final : public llm::Adapter {
 public:
  std::string name() const override { return "lora"; }
  std::vector<llm::AdapterOption> options() const override { return lora_options(); }
  std::string peft_type() const override { return "LORA"; }

  std::vector<torch::Tensor> attach(llm::CausalLM& model,
                                    const llm::Json& settings) const override {
    const std::string source = "LoRA settings";
    LoraShape shape;
    shape.r = llm::json_int_or(settings, "lora_r", shape.r, source);
    shape.alpha = llm::json_number_or(settings, "lora_alpha", shape.alpha, source);
    shape.dropout = llm::json_number_or(settings, "lora_dropout", shape.dropout, source);
    if (shape.r <= 0 || shape.r > 65536) throw llm::UserError("--lora_r must be in 1..65536");
    if (!(shape.alpha > 0) || !std::isfinite(shape.alpha)) {
      throw llm::UserError(
          "--lora_alpha must be a finite positive number (0 would scale every "
          "update to nothing)");
    }
    if (shape.dropout < 0 || shape.dropout >= 1) {
      throw llm::UserError("--lora_dropout must be in [0, 1)");
    }
    const auto switches = TargetSwitches::from_settings(settings);
    std::vector<torch::Tensor> trainable;
    for (auto& declared : model.adaptable_linears()) {
      const auto decision = decide_target(declared, switches);
      if (!decision.targeted) continue;
      auto& linear = declared.linear;
      LoraShape layer = shape;
      layer.in_features = linear->in_features();
      layer.out_features = linear->out_features();
      auto lora = std::make_shared<LoraLinear>(layer, model.device(), decision.row_mask);
      linear->set_adapter(lora, kSlotName);
      trainable.push_back(lora->lora_A);
      trainable.push_back(lora->lora_B);
    }
    if (trainable.empty()) {
      throw llm::UserError(
          "the LoRA switches (--lora_query/key/value/projection/mlp/head) select no layer of "
          "this " +
          model.config().model_type + " model");
    }
    return trainable;
  }

  void load(llm::CausalLM& model, const fs::path& adapter_dir) const override {
    if (!fs::is_directory(adapter_dir)) {
      throw llm::UserError("--lora_path '" + adapter_dir.string() +
                           "' is not a directory (expected adapter_config.json + " + kWeightsFile +
                           ")");
    }
    const auto config = read_peft_config(adapter_dir / kConfigFile);
    const auto weights_path = adapter_dir / kWeightsFile;
    if (!fs::exists(weights_path)) {
      throw llm::UserError(weights_path.string() + ": not found (only safetensors adapters load)");
    }
    const llm::SafetensorsFile weights(weights_path);
    const std::string source = weights_path.string();

    // Check everything before attaching anything, so a bad adapter leaves the model untouched.
    struct Planned {
      llm::AdaptableLinear linear;
      std::string module;
    };
    std::vector<Planned> planned;
    std::set<std::string> used;
    for (auto& layer : model.adaptable_linears()) {
      const std::string& module = layer.name;
      auto& linear = layer.linear;
      if (!config.targets(module)) continue;
      const std::string a = peft_tensor_name(module, "lora_A");
      const std::string b = peft_tensor_name(module, "lora_B");
      const std::vector<int64_t> want_a{config.r, linear->in_features()};
      const std::vector<int64_t> want_b{linear->out_features(), config.r};
      for (const auto& [tensor, want] : {std::pair{a, want_a}, std::pair{b, want_b}}) {
        if (!weights.contains(tensor)) {
          throw llm::UserError(source + ": missing tensor '" + tensor + "' for " + module);
        }
        if (weights.info(tensor).shape != want) {
          throw llm::UserError(source + ": '" + tensor + "' has shape " +
                               shape_text(weights.info(tensor).shape) + " but this model's " +
                               module + " needs " + shape_text(want) +
                               " (is the adapter for another model?)");
        }
        // NaN or infinite weights would merge into a model that produces only NaN.
        if (!torch::isfinite(weights.tensor(tensor)).all().item<bool>()) {
          throw llm::UserError(source + ": '" + tensor + "' holds NaN or infinite values");
        }
        used.insert(tensor);
      }
      planned.push_back({linear, module});
    }
    if (planned.empty()) {
      throw llm::UserError((adapter_dir / kConfigFile).string() + ": target_modules " +
                           config.describe_targets() + " match no layer of this " +
                           model.config().model_type +
                           " model (is the adapter for another model?)");
    }
    for (const auto& info : weights.tensors()) {
      if (!used.count(info.name)) {
        throw llm::UserError(source + ": tensor '" + info.name +
                             "' belongs to no targeted layer of this model");
      }
    }
    for (auto& plan : planned) {
      LoraShape shape;
      shape.in_features = plan.linear->in_features();
      shape.out_features = plan.linear->out_features();
      shape.r = config.r;
      shape.alpha = config.lora_alpha;
      shape.dropout = config.lora_dropout;
      shape.rslora = config.use_rslora;
      auto lora = std::make_shared<LoraLinear>(shape, model.device(), torch::Tensor());
      torch::NoGradGuard no_grad;
      lora->lora_A.copy_(weights.tensor(peft_tensor_name(plan.module, "lora_A")));
      lora->lora_B.copy_(weights.tensor(peft_tensor_name(plan.module, "lora_B")));
      lora->lora_A.set_requires_grad(false);
      lora->lora_B.set_requires_grad(false);
      lora->eval();
      plan.linear->set_adapter(lora, kSlotName);
    }
  }

  void save(llm::CausalLM& model, const fs::path& adapter_dir) const override {
    const auto layers = attached(model);
    if (layers.empty()) throw llm::UserError("no LoRA adapter is attached to the model to save");
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    std::set<std::string> targets;
    PeftLoraConfig config;
    const auto& first = layers.front().second->shape();
    config.r = first.r;
    config.lora_alpha = first.alpha;
    config.lora_dropout = first.dropout;
    config.use_rslora = first.rslora;
    for (const auto& [module, lora] : layers) {
      torch::NoGradGuard no_grad;
      tensors.emplace_back(peft_tensor_name(module, "lora_A"), lora->lora_A.detach());
      tensors.emplace_back(peft_tensor_name(module, "lora_B"), lora->effective_B().detach());
      targets.insert(leaf_name(module));
    }
    config.target_modules.assign(targets.begin(), targets.end());
    // Where the base model's config.json came from, as PEFT records it (a local directory here),
    // so AutoPeftModelForCausalLM can find the base; empty for a model without one.
    const fs::path model_config(model.config().source);
    if (model_config.filename() == "config.json" && fs::exists(model_config)) {
      config.base_model_name_or_path = fs::absolute(model_config).parent_path().string();
    }
    fs::create_directories(adapter_dir);
    llm::write_safetensors(adapter_dir / kWeightsFile, tensors, {{"format", "pt"}});
    llm::write_file_atomic(adapter_dir / kConfigFile, peft_config_json(config).dump(2) + "\n");
  }

  void merge(llm::CausalLM& model) const override {
    torch::NoGradGuard no_grad;
    // A weight shared with another tensor (a head tied to the input embedding) would change both:
    // refused before anything is merged.
    for (auto& layer : model.adaptable_linears()) {
      if (!std::dynamic_pointer_cast<LoraLinear>(layer.linear->adapter())) continue;
      const auto& weight = layer.linear->weight;
      if (!weight.defined() || weight.numel() == 0) continue;
      bool itself_seen = false;
      for (const auto& item : model.named_parameters(/*recurse=*/true)) {
        if (item.value().data_ptr() != weight.data_ptr()) continue;
        if (item.value().is_same(weight) && !itself_seen) {
          itself_seen = true;
          continue;
        }
        throw llm::UserError("cannot merge the LoRA adapter of " + layer.name +
                             ": its weight is also " + item.key() +
                             " (tied embeddings), and merging would change both; use the adapter "
                             "unmerged (--lora_path) or train without --lora_head");
      }
    }
    for (auto& layer : model.adaptable_linears()) {
      auto& linear = layer.linear;
      auto lora = std::dynamic_pointer_cast<LoraLinear>(linear->adapter());
      if (!lora) continue;
      // W + B A * scaling, in fp32 whatever the base dtype, rounded once.
      const auto delta = torch::matmul(lora->effective_B(), lora->lora_A) * lora->scaling();
      const auto merged = linear->weight.to(torch::kFloat) + delta.to(linear->weight.device());
      linear->weight.copy_(merged.to(linear->weight.scalar_type()));
      linear->clear_adapter();
    }
  }
};

void register_lora(llm::Registrar& registrar) {
  registrar.add_adapter(std::make_shared<LoraAdapter>());
}

}  // namespace
}  // namespace llm_lora

LLMHOST_PLUGIN(kAdapter, "lora", "0.1.0", "LoRA adapters in PEFT's layout (train, load, merge)",
               llm_lora::register_lora)
