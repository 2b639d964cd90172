#pragma once
#include <cstdint>
#include <string>
#include <tuple>

#include "llm/export.hpp"

namespace llm {

// A RoPE frequency scaling, as config.json's `rope_scaling` (or transformers 5's
// `rope_parameters`) gives it. "default" leaves the inverse frequencies alone; "llama3" (Llama 3.1
// and later) divides the low frequencies by `factor`, keeps the high ones, and blends in between
// (transformers' _compute_llama3_parameters).
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position_embeddings = 0.0;

  bool operator<(const RopeScaling& o) const {
    return std::tie(type, factor, low_freq_factor, high_freq_factor,
                    original_max_position_embeddings) <
           std::tie(o.type, o.factor, o.low_freq_factor, o.high_freq_factor,
                    o.original_max_position_embeddings);
  }
};

struct ModelConfig;

// The scaling `config` asks for: a non-null `rope_scaling`, else transformers 5's
// `rope_parameters`, else none. ModelConfig::from_json has validated it (UserError otherwise).
LLM_API RopeScaling rope_scaling_of(const ModelConfig& config);

}  // namespace llm
