// --task generate: stream a continuation of --prompt (lit-gpt generate/base.py defaults).
#include <chrono>
#include <iostream>

#include "llm/device.hpp"
#include "llm/error.hpp"
#include "llm/generation.hpp"
#include "llm/tokenizer.hpp"
#include "stream_decoder.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::generate_task {
namespace {

void declare(po::options_description& o) {
  add_checkpoint_option(o);
  o.add_options()                                                                        //
      ("prompt", po::value<std::string>()->required(), "text to continue")               //
      ("max_new_tokens", po::value<int64_t>()->default_value(50), "tokens to generate")  //
      ("temperature", po::value<double>()->default_value(0.8), "0 = greedy")             //
      ("top_k", po::value<int64_t>()->default_value(200),
       "sample among the k likeliest (0 = all)")                                             //
      ("top_p", po::value<double>()->default_value(1.0), "nucleus sampling mass (1 = off)")  //
      ("seed", po::value<uint64_t>()->default_value(1234), "sampling seed")                  //
      ("ignore_eos", po::value<bool>()->default_value(false)->implicit_value(true),
       "keep generating past the end-of-sequence token")                                        //
      ("lora_path", po::value<std::string>(), "unmerged LoRA adapter directory (PEFT layout)")  //
      ("random_init", po::value<bool>()->default_value(false)->implicit_value(true),
       "random weights from config.json alone (benchmarks)")  //
      ("cuda_graph", po::value<bool>()->default_value(true)->implicit_value(true),
       "on CUDA, replay one captured decode step as a CUDA graph (same tokens, fewer launches)");
  add_device_options(o);
  add_quantize_option(o);
}

llm::SamplingOptions sampling_options(const TaskContext& ctx) {
  llm::SamplingOptions sampling;
  sampling.temperature = ctx.get<double>("temperature");
  sampling.top_k = ctx.get<int64_t>("top_k");
  sampling.top_p = ctx.get<double>("top_p");
  return sampling;
}

void check_options(const TaskContext& ctx) {
  if (ctx.get<int64_t>("max_new_tokens") < 1) {
    throw llm::UserError("--max_new_tokens must be at least 1");
  }
  llm::check_sampling_options(sampling_options(ctx));  // before the model is read
}

int run(TaskContext& ctx) {
  check_options(ctx);
  const std::string checkpoint_dir = ctx.get<std::string>("checkpoint_dir");
  const torch::Device device = llm::parse_device(ctx.get<std::string>("device"));
  const torch::ScalarType dtype = task_precision(ctx, device);
  const auto quantize = task_quantize(ctx);

  // Tokenizer first: a bad prompt or tokenizer fails before the weights are read.
  const auto tokenizer = llm::load_tokenizer(checkpoint_dir);
  const std::string prompt = ctx.get<std::string>("prompt");
  const std::vector<int64_t> prompt_ids = tokenizer->encode_for_model(prompt);

  // The adapter plugin, by the directory's peft_type, before the model is loaded.
  const auto adapter = ctx.has("lora_path") ? adapter_for_directory(ctx, "lora_path") : nullptr;
  const auto load_start = std::chrono::steady_clock::now();
  LoadedModel loaded =
      load_model(ctx.registry(), checkpoint_dir, device, dtype, ctx.get<bool>("random_init"),
                 ctx.get<uint64_t>("seed"), quantize);
  if (adapter) adapter->load(*loaded.model, ctx.get<std::string>("lora_path"));
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  llm::GenerationOptions options;
  options.max_new_tokens = ctx.get<int64_t>("max_new_tokens");
  options.sampling = sampling_options(ctx);
  options.seed = ctx.get<uint64_t>("seed");
  options.stop_at_eos = !ctx.get<bool>("ignore_eos");
  options.cuda_graph = ctx.get<bool>("cuda_graph");
  if (tokenizer->eos_id() && loaded.config.eos_token_ids.empty()) {
    options.eos_ids = {*tokenizer->eos_id()};
  }

  StreamDecoder stream(*tokenizer, prompt_ids);
  const bool streaming = !ctx.json_output();
  if (streaming) {
    ctx.out() << prompt << std::flush;
  }
  const llm::GenerationResult result =
      llm::generate(*loaded.model, prompt_ids, options, [&](int64_t token) {
        const std::string piece = stream.push(token);
        if (streaming && !piece.empty()) ctx.out() << piece << std::flush;
      });
  const std::string rest = stream.finish();
  if (streaming) ctx.out() << rest << "\n";

  const std::vector<int64_t> new_ids(result.tokens.begin() + prompt_ids.size(),
                                     result.tokens.end());
  if (ctx.json_output()) {
    const llm::Json json{{"prompt_ids", prompt_ids},
                         {"output_ids", result.tokens},
                         {"text", tokenizer->decode(new_ids)},
                         {"new_tokens", result.new_tokens},
                         {"tokens_per_s", result.tokens_per_second},
                         {"decode_path", result.decode_path},
                         {"stopped_at_eos", result.stopped_at_eos}};
    ctx.out() << json.dump(-1, ' ', false, llm::Json::error_handler_t::replace) << "\n";
  }
  ctx.err() << "llmhost: loaded in " << load_seconds << " s; " << result.new_tokens
            << " new tokens, " << result.tokens_per_second << " tokens/s ("
            << llm::precision_name(dtype) << " on " << device.str() << ", " << result.decode_path
            << ")" << (result.stopped_at_context ? "; stopped at the model's context length" : "")
            << "\n";
  return llm::kExitOk;
}

const bool registered = register_task(
    {"generate", "continue a prompt with the model (streams text; tokens/s on stderr)", declare,
     run});

}  // namespace
}  // namespace llmhost::generate_task
