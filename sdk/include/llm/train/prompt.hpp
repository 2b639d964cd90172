#pragma once
// The Alpaca prompt template of the lit-gpt tutorial and the tokenisation of one instruction
// example, as scripts/prepare_{alpaca,dolly}.py did it (minus its bugs: see anchors-features §1.3).
#include <cstdint>
#include <string>
#include <vector>

#include "llm/dataset.hpp"
#include "llm/export.hpp"
#include "llm/tokenizer.hpp"

namespace llm {

// Template name recorded in manifests, so a prepared set says how its prompts were made.
inline constexpr const char* kAlpacaTemplateName = "alpaca";

// The prompt up to and including "### Response:"; the with-input variant when input is non-empty.
LLM_API std::string alpaca_prompt(const std::string& instruction, const std::string& input);

struct EncodedExample {
  std::vector<int64_t> ids;   // BOS (per tokenizer config) + prompt + response + EOS, truncated
  int64_t prompt_length = 0;  // tokens of the prompt alone (BOS included), capped at ids.size()
};

// Encodes prompt+response as one string (like the tutorial), appends EOS, then truncates to
// max_seq_length (a truncated sample loses its EOS, as in lit-gpt). max_seq_length must be > 0.
LLM_API EncodedExample encode_example(const Tokenizer& tokenizer, const InstructionExample& example,
                                      int64_t max_seq_length);

}  // namespace llm
