#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "llm/export.hpp"
#include "llm/sampling.hpp"

namespace llm {

class CausalLM;

struct GenerationOptions {
  int64_t max_new_tokens = 50;
  SamplingOptions sampling;
  uint64_t seed = 1234;  // of the sampling generator (CPU), so runs repeat on any device
  bool stop_at_eos = true;
  std::vector<int64_t> eos_ids;  // empty: the model config's eos_token_id(s)
  // On CUDA, record one decode step as a CUDA graph and replay it (same tokens, far fewer kernel
  // launches); falls back to eager steps where capture is not possible.
  bool cuda_graph = true;
  // Greedy decoding picks each token on the model's device and feeds it to the next step there;
  // the host reads the tokens back (streams them, checks EOS) every this many steps instead of
  // waiting for each one. Steps run past an EOS inside such a chunk are dropped. 0: 16 on CUDA,
  // 1 elsewhere (a CPU step is the host's own work, and would be wasted).
  int64_t greedy_sync_every = 0;
};

struct GenerationResult {
  std::vector<int64_t> tokens;  // prompt followed by the new tokens
  int64_t new_tokens = 0;
  bool stopped_at_eos = false;
  bool stopped_at_context = false;  // max_new_tokens was cut to max_position_embeddings
  double prefill_seconds = 0;       // prompt forward + first token
  double decode_seconds = 0;        // the one-token steps after it (CUDA graph capture excluded)
  double tokens_per_second = 0;     // decode steps per second (0 when there were none)
  std::string decode_path;          // "cuda_graph", or "eager" with the reason
};

// Autoregressive generation for one prompt: a KV cache sized prompt + max_new_tokens, one
// forward over the prompt, then one token per step, without autograd. on_token sees each new
// token as soon as the host has it (EOS included; greedy_sync_every tokens at a time). UserError
// naming --prompt for an empty prompt, an id outside the vocabulary or a prompt longer than the
// model's context.
LLM_API GenerationResult generate(CausalLM& model, const std::vector<int64_t>& prompt,
                                  const GenerationOptions& options,
                                  const std::function<void(int64_t token)>& on_token = {});

}  // namespace llm
