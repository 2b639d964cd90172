#include "quantized_model.hpp"

#include "llm/model_config.hpp"
#include "llm/nn/quantize.hpp"

namespace llmhost_bench {

llmhost::LoadedModel load_nf4_random(const llmhost::PluginRegistry& registry,
                                     const std::filesystem::path& shape_dir,
                                     const torch::Device& device, torch::ScalarType dtype,
                                     uint64_t seed) {
  llmhost::LoadedModel loaded;
  loaded.config = llm::read_model_config(shape_dir);
  loaded.family = registry.family_for(loaded.config);
  loaded.family->validate(loaded.config);
  // Uninitialised CPU storage: the quantized layers' pages are never written, so never resident.
  loaded.model =
      loaded.family->build(loaded.config, torch::TensorOptions().device(torch::kCPU).dtype(dtype));
  torch::manual_seed(seed);
  // As llm::random_init draws matrices.
  const double std =
      llm::json_number_or(loaded.config.raw, "initializer_range", 0.02, loaded.config.source);
  loaded.quantized = llm::quantize_frozen_linears(
      *loaded.model, llm::QuantizeScheme::kNf4, device,
      [&](const std::string&, llm::AdaptableLinear& linear) {
        return torch::empty({linear->out_features(), linear->in_features()},
                            torch::TensorOptions().device(device).dtype(dtype))
            .normal_(0.0, std);
      });
  loaded.model->to(device);
  llm::random_init(*loaded.model, seed);  // what is left: embeddings, norms, biases, the head
  for (auto& parameter : loaded.model->parameters()) parameter.set_requires_grad(false);
  loaded.model->eval();
  return loaded;
}

}  // namespace llmhost_bench
