#pragma once
#include "llm/nn/decoder.hpp"

namespace llama {

// How Llama reads config.json (transformers' LlamaConfig defaults) into the shared decoder layout:
// `rope_theta` (or transformers 5's `rope_parameters`), the whole head rotated, "default" or
// "llama3" RoPE scaling, `attention_bias` on all four projections, `mlp_bias`, `rms_norm_eps`.
// UserError naming config.json and the key.
llm::DecoderSpec read_llama_config(const llm::ModelConfig& common);

}  // namespace llama
