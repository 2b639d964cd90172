#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "llm/export.hpp"
#include "llm/loss.hpp"
#include "llm/model_config.hpp"
#include "llm/nn/attention.hpp"
#include "llm/nn/kv_cache.hpp"
#include "llm/nn/linear.hpp"
#include "llm/nn/linear_role.hpp"

namespace llm {

// A decoder-only language model. Parameters are registered under their Hugging Face names, so
// named_parameters() keys equal the checkpoint's tensor names (e.g. "gpt_neox.layers.0.attention.
// query_key_value.weight") and loading, saving and PEFT adapter names need no translation table.
class LLM_API CausalLM : public torch::nn::Module {
 public:
  ~CausalLM() override;

  // input_ids [B, T] int64 -> final hidden states [B, T, hidden] (after the final norm).
  // With a cache, token t sits at position cache->length() + t; the cache advances by T.
  virtual torch::Tensor hidden_states(const torch::Tensor& input_ids, KVCache* cache) = 0;
  // Samples packed end to end in one row, input_ids [1, T] (T = packing.tokens()): each attends
  // only to itself and starts at position 0, so its hidden states are those it has alone. Families
  // that support packing override this; the default is a UserError naming the model type.
  virtual torch::Tensor packed_hidden_states(const torch::Tensor& input_ids,
                                             const PackedSequences& packing);
  virtual AdaptableLinear& output_head() = 0;  // hidden -> vocabulary logits
  virtual const ModelConfig& config() const = 0;

  // Tensors a checkpoint may carry that the model derives itself (e.g. rotary inv_freq buffers).
  virtual bool ignores_checkpoint_tensor(const std::string& name) const;

  // Every linear layer that accepts an adapter, by Hugging Face module name
  // ("gpt_neox.layers.0.attention.query_key_value", "lm_head", ...), with the roles of its rows.
  virtual std::vector<ModelLinear> adaptable_linears() = 0;

  // logits [B, T, vocab] = output_head(hidden_states(ids, cache)).
  torch::Tensor forward(const torch::Tensor& input_ids, KVCache* cache = nullptr);
  // Next-token cross-entropy of forward(input_ids) against labels [B, T] (masked_cross_entropy's
  // meaning). When the output head is a plain frozen linear layer, computed from the hidden states
  // a block of rows at a time (masked_next_token_loss): no [B, T, vocab] logits, in training or
  // not. With `packing`, input_ids and labels are one packed row [1, T] (packed_hidden_states); the
  // labels must ignore each sample's first token, which the previous sample's last would predict.
  MaskedLoss next_token_loss(const torch::Tensor& input_ids, const torch::Tensor& labels,
                             int64_t ignore_index = -100, const PackedSequences* packing = nullptr);
  KVCache make_cache(int64_t batch, int64_t capacity) const;
  torch::Device device() const;
  torch::ScalarType dtype() const;  // of the frozen weights

  // Recompute each transformer block in backward instead of keeping its activations (training
  // only; families route their block loop through run_block).
  void set_activation_checkpointing(bool enabled) { activation_checkpointing_ = enabled; }
  bool activation_checkpointing() const { return activation_checkpointing_; }

 protected:
  // call(x) for one block: checkpointed when enabled, training, grad on and no KV cache.
  torch::Tensor run_block(torch::nn::Module& block, const torch::Tensor& x, const KVCache* cache,
                          std::function<torch::Tensor(const torch::Tensor&)> call);

 private:
  bool activation_checkpointing_ = false;
};

// A model family plugin: recognises checkpoints from config.json and builds the module.
class LLM_API ModelFamily {
 public:
  virtual ~ModelFamily();
  virtual std::string name() const = 0;                        // "gpt_neox"
  virtual std::vector<std::string> model_types() const = 0;    // config.json model_type values
  virtual std::vector<std::string> architectures() const = 0;  // config.json architectures
  // The family reads its own config.json keys (defaults, legacy names) from config.raw and
  // validates them: UserError naming config.json and the key on failure.
  virtual void validate(const ModelConfig& config) const;
  // Those keys as the family resolved them (defaults applied), for inspection and tests: e.g.
  // {"rotary_dim": 4, "use_parallel_residual": true, ...}. Empty by default.
  virtual Json settings(const ModelConfig& config) const;
  // Builds the module with uninitialised parameters allocated with `options` (device + dtype).
  virtual std::shared_ptr<CausalLM> build(const ModelConfig& config,
                                          const torch::TensorOptions& options) const = 0;
  bool recognises(const ModelConfig& config) const;  // model_type or an architecture matches
};

// Copies every parameter of `model` from the checkpoint's safetensors (single or sharded),
// casting from the on-disk dtype. UserError for a missing tensor, a wrong shape, or an unexpected
// tensor (naming the file and tensor).
LLM_API void load_weights(CausalLM& model, const std::filesystem::path& checkpoint_dir);

// Fills the parameters as Hugging Face's _init_weights would (normal(0, initializer_range),
// norms at 1/0, biases 0), for benchmarks at real sizes without a checkpoint.
LLM_API void random_init(CausalLM& model, uint64_t seed);

}  // namespace llm
