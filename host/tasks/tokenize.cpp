// --task tokenize: what the model would see for a text; works on a tokenizer-only directory.
#include <iostream>

#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "task.hpp"

// A namespace of its own: the tasks are compiled together in unity builds.
namespace llmhost::tokenize_task {
namespace {

void declare(po::options_description& o) {
  o.add_options()  //
      ("checkpoint_dir", po::value<std::string>()->required(),
       "directory holding tokenizer.json or tokenizer.model (+ tokenizer_config.json)")  //
      ("text", po::value<std::string>()->required(), "text to encode")                   //
      ("add_special_tokens", po::value<bool>()->default_value(true)->implicit_value(true),
       "add BOS (and EOS) as the tokenizer config says");
}

int run(TaskContext& ctx) {
  const auto tokenizer = llm::load_tokenizer(ctx.get<std::string>("checkpoint_dir"));
  const auto text = ctx.get<std::string>("text");
  const auto ids = ctx.get<bool>("add_special_tokens") ? tokenizer->encode_for_model(text)
                                                       : tokenizer->encode(text);
  llm::Json tokens = llm::Json::array();
  for (const auto id : ids) tokens.push_back(tokenizer->token_text(id));
  const std::string decoded = tokenizer->decode(ids);
  if (ctx.json_output()) {
    const llm::Json result{{"ids", ids}, {"tokens", tokens}, {"decoded", decoded}};
    ctx.out() << result.dump(-1, ' ', false, llm::Json::error_handler_t::replace) << "\n";
    return llm::kExitOk;
  }
  ctx.out() << "ids:     " << llm::Json(ids).dump() << "\n"
            << "tokens:  " << tokens.dump(-1, ' ', false, llm::Json::error_handler_t::replace)
            << "\n"
            << "decoded: " << decoded << "\n";
  return llm::kExitOk;
}

const bool registered = register_task(
    {"tokenize", "encode a text and show ids, tokens and the decoded text", declare, run});

}  // namespace
}  // namespace llmhost::tokenize_task
