#include "llm/generation.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>

#include "decode_graph.hpp"
#include "llm/error.hpp"
#include "llm/model.hpp"

namespace llm {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check_prompt(const std::vector<int64_t>& prompt, const ModelConfig& config) {
  if (prompt.empty()) throw UserError("--prompt: the prompt encodes to no tokens");
  const auto context = config.max_position_embeddings;
  if (static_cast<int64_t>(prompt.size()) > context) {
    throw UserError("--prompt: " + std::to_string(prompt.size()) +
                    " tokens exceed the model's context of " + std::to_string(context) +
                    " (max_position_embeddings)");
  }
  for (const auto id : prompt) {
    if (id < 0 || id >= config.vocab_size) {
      throw UserError("--prompt: token id " + std::to_string(id) +
                      " is outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
    }
  }
}

}  // namespace

GenerationResult generate(CausalLM& model, const std::vector<int64_t>& prompt,
                          const GenerationOptions& options,
                          const std::function<void(int64_t token)>& on_token) {
  const auto& config = model.config();
  check_prompt(prompt, config);
  if (options.max_new_tokens < 0) {
    throw UserError("--max_new_tokens must be >= 0, got " + std::to_string(options.max_new_tokens));
  }
  const auto prompt_length = static_cast<int64_t>(prompt.size());
  const auto room = config.max_position_embeddings - prompt_length;
  const auto max_new = std::min(options.max_new_tokens, room);
  const auto& eos_ids = options.eos_ids.empty() ? config.eos_token_ids : options.eos_ids;

  GenerationResult result;
  result.tokens = prompt;
  result.stopped_at_context = max_new < options.max_new_tokens;
  if (max_new == 0) return result;

  torch::NoGradGuard no_grad;
  c10::InferenceMode inference;
  auto generator = at::detail::createCPUGenerator(options.seed);
  auto cache = model.make_cache(1, prompt_length + max_new);
  const auto device = model.device();

  // The token after `last_logits` ([1, vocab]), as a [1, 1] tensor on the model's device.
  const auto next_token = [&](const torch::Tensor& last_logits) {
    return sample_next(last_logits, options.sampling, &generator).view({1, 1});
  };
  const auto record = [&](int64_t token) {
    result.tokens.push_back(token);
    ++result.new_tokens;
    if (on_token) on_token(token);
  };
  const auto is_eos = [&](int64_t token) {
    return options.stop_at_eos && std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end();
  };

  const auto prefill_start = Clock::now();
  const auto prompt_logits =
      model.forward(torch::tensor(prompt, torch::kLong).view({1, -1}).to(device), &cache);
  auto current = next_token(prompt_logits.select(1, prompt_logits.size(1) - 1));
  int64_t token = current.item<int64_t>();
  record(token);
  result.prefill_seconds = seconds_since(prefill_start);

  const bool more = !is_eos(token) && result.new_tokens < max_new;
  std::unique_ptr<DecodeGraph> graph;
  result.decode_path = "eager";
  if (more && options.cuda_graph && device.is_cuda() && !model.is_training()) {
    std::string why_not;
    graph = capture_decode_graph(model, cache, &why_not);
    result.decode_path = graph ? "cuda_graph" : "eager: " + why_not;
  }
  const auto decode_start = Clock::now();  // capture excluded: a one-off cost
  // Each step's token is the next step's input without leaving the device, so steps queue back to
  // back; the host reads the tokens (streams them, checks EOS) every `sync_every` steps. Sampling
  // draws on the CPU generator, a round trip each step anyway: 1.
  const int64_t sync_every = options.sampling.temperature != 0.0 ? 1
                             : options.greedy_sync_every > 0     ? options.greedy_sync_every
                             : device.is_cuda()                  ? 16
                                                                 : 1;
  while (!(result.stopped_at_eos = is_eos(token)) && result.new_tokens < max_new) {
    const int64_t steps = std::min(sync_every, max_new - result.new_tokens);
    auto chosen = torch::empty({steps}, torch::TensorOptions().dtype(torch::kLong).device(device));
    for (int64_t i = 0; i < steps; ++i) {
      const auto logits =
          graph ? graph->step_on_device(current) : model.forward(current, &cache).select(1, 0);
      current = next_token(logits);
      chosen.narrow(0, i, 1).copy_(current.view({1}));
    }
    const auto on_host = chosen.cpu();
    const auto* ids = on_host.data_ptr<int64_t>();
    for (int64_t i = 0; i < steps; ++i) {
      token = ids[i];
      record(token);
      if (is_eos(token)) break;
    }
  }
  result.decode_seconds = seconds_since(decode_start);
  const auto decode_steps = result.new_tokens - 1;
  if (decode_steps > 0 && result.decode_seconds > 0) {
    result.tokens_per_second = static_cast<double>(decode_steps) / result.decode_seconds;
  }
  return result;
}

}  // namespace llm
