#pragma once
// The shell every decoder-only family shares: token embedding, a stack of blocks, final norm and
// output head (optionally tied to the embedding), with the KV-cache step, packed rows and
// activation checkpointing. A family writes its block (attention, MLP, residuals), names its
// weights and picks its final norm; CausalDecoder does the rest.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llm/export.hpp"
#include "llm/model.hpp"
#include "llm/model_config.hpp"
#include "llm/nn/linear.hpp"

namespace llm {

// One block of the stack, as a family writes it.
class LLM_API DecoderBlock : public torch::nn::Module {
 public:
  ~DecoderBlock() override;
  // Block number `layer` (its KV-cache slot). packing: samples laid end to end in x's one row
  // (no cache then), else nullptr.
  virtual torch::Tensor forward(const torch::Tensor& x, KVCache* cache, int64_t layer,
                                const PackedSequences* packing) = 0;
  // The block's linear layers with their roles, named under `prefix` ("model.layers.3.").
  virtual std::vector<ModelLinear> linears(const std::string& prefix) = 0;
};

// The checkpoint's names of the shell's parts:
//   <backbone>.<embedding>.weight, <backbone>.<layers>.<i>.*, <backbone>.<final_norm>.*,
//   <head>.weight (absent from the file when tied).
struct LLM_API DecoderNames {
  std::string backbone;    // "model", "gpt_neox"
  std::string embedding;   // "embed_tokens", "embed_in"
  std::string layers;      // "layers"
  std::string final_norm;  // "norm", "final_layer_norm"
  std::string head;        // "lm_head", "embed_out"
};

// What a family gives the shell.
struct LLM_API DecoderParts {
  DecoderNames names;
  std::function<std::shared_ptr<DecoderBlock>(int64_t layer)> make_block;
  std::function<torch::nn::AnyModule()> make_final_norm;  // e.g. AnyModule(RMSNorm(...))
  bool tie_word_embeddings = false;                       // the head shares the embedding's storage
};

class LLM_API CausalDecoder : public CausalLM {
 public:
  CausalDecoder(const ModelConfig& config, const DecoderParts& parts,
                const torch::TensorOptions& options);
  ~CausalDecoder() override;

  torch::Tensor hidden_states(const torch::Tensor& input_ids, KVCache* cache) override;
  torch::Tensor packed_hidden_states(const torch::Tensor& input_ids,
                                     const PackedSequences& packing) override;
  AdaptableLinear& output_head() override { return head_; }
  const ModelConfig& config() const override { return config_; }
  std::vector<ModelLinear> adaptable_linears() override;

 private:
  torch::Tensor run(const torch::Tensor& input_ids, KVCache* cache, const PackedSequences* packing);

  ModelConfig config_;
  DecoderNames names_;
  Embedding embedding_{nullptr};
  std::vector<std::shared_ptr<DecoderBlock>> blocks_;
  torch::nn::AnyModule final_norm_;
  AdaptableLinear head_{nullptr};
};

}  // namespace llm
