#include "llm/train/prompt.hpp"

#include <algorithm>

#include "llm/error.hpp"

namespace llm {

std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  if (!input.empty()) {
    return "Below is an instruction that describes a task, paired with an input that provides "
           "further context. Write a response that appropriately completes the request.\n\n"
           "### Instruction:\n" +
           instruction + "\n\n### Input:\n" + input + "\n\n### Response:";
  }
  return "Below is an instruction that describes a task. Write a response that appropriately "
         "completes the request.\n\n### Instruction:\n" +
         instruction + "\n\n### Response:";
}

EncodedExample encode_example(const Tokenizer& tokenizer, const InstructionExample& example,
                              int64_t max_seq_length) {
  if (max_seq_length <= 0) throw UserError("--max_seq_length must be a positive integer");
  const std::string prompt = alpaca_prompt(example.instruction, example.input);
  const auto prompt_ids = tokenizer.encode_for_model(prompt);
  EncodedExample encoded;
  encoded.ids = tokenizer.encode_for_model(prompt + example.output, /*append_eos=*/true);
  if (static_cast<int64_t>(encoded.ids.size()) > max_seq_length) encoded.ids.resize(max_seq_length);
  encoded.prompt_length = std::min<int64_t>(prompt_ids.size(), encoded.ids.size());
  return encoded;
}

}  // namespace llm
