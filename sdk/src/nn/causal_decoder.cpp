#include "llm/nn/causal_decoder.hpp"

#include <utility>

#include "llm/nn/kv_cache.hpp"

namespace llm {

DecoderBlock::~DecoderBlock() = default;

CausalDecoder::CausalDecoder(const ModelConfig& config, const DecoderParts& parts,
                             const torch::TensorOptions& options)
    : config_(config), names_(parts.names), final_norm_(parts.make_final_norm()) {
  // The backbone is a plain module so that parameter names nest as the checkpoint's do.
  auto backbone = register_module(names_.backbone, std::make_shared<torch::nn::Module>());
  embedding_ = backbone->register_module(
      names_.embedding, Embedding(config_.vocab_size, config_.hidden_size, options));
  auto layers = backbone->register_module(names_.layers, torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    blocks_.push_back(parts.make_block(i));
    layers->push_back(blocks_.back());
  }
  backbone->register_module(names_.final_norm, final_norm_.ptr());
  head_ = register_module(names_.head,
                          AdaptableLinear(config_.hidden_size, config_.vocab_size, false, options));
  if (parts.tie_word_embeddings) head_->weight.set_data(embedding_->weight);
}

CausalDecoder::~CausalDecoder() = default;

torch::Tensor CausalDecoder::hidden_states(const torch::Tensor& input_ids, KVCache* cache) {
  return run(input_ids, cache, nullptr);
}

torch::Tensor CausalDecoder::packed_hidden_states(const torch::Tensor& input_ids,
                                                  const PackedSequences& packing) {
  return run(input_ids, nullptr, &packing);
}

torch::Tensor CausalDecoder::run(const torch::Tensor& input_ids, KVCache* cache,
                                 const PackedSequences* packing) {
  auto x = embedding_(input_ids);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    DecoderBlock* block = blocks_[i].get();
    const auto layer = static_cast<int64_t>(i);
    x = run_block(*block, x, cache, [block, cache, layer, packing](const torch::Tensor& h) {
      return block->forward(h, cache, layer, packing);
    });
  }
  if (cache) cache->advance(input_ids.size(1));
  return final_norm_.forward(x);
}

std::vector<ModelLinear> CausalDecoder::adaptable_linears() {
  std::vector<ModelLinear> linears;
  const auto prefix = names_.backbone + "." + names_.layers + ".";
  for (size_t i = 0; i < blocks_.size(); ++i) {
    auto block = blocks_[i]->linears(prefix + std::to_string(i) + ".");
    linears.insert(linears.end(), std::make_move_iterator(block.begin()),
                   std::make_move_iterator(block.end()));
  }
  linears.push_back(plain_linear(names_.head, head_, LinearRole::kLmHead));
  return linears;
}

}  // namespace llm
