#pragma once
// The parts of tokenizer.json that every pipeline shares: the BPE model, the added tokens and the
// post-processor's special tokens. Each parser throws UserError naming `source` (the file).
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "added_tokens.hpp"
#include "bpe_model.hpp"

namespace llm::tokenizer_detail {

// A component's "type" ("" when absent or not a string).
std::string component_type(const nlohmann::json& component);

// A string field; `fallback` when absent or null, UserError naming `source` when not a string.
std::string string_or(const nlohmann::json& object, const char* key, const std::string& fallback,
                      const std::string& source);

// A token id within 0 .. 2^31 - 1; `what` names the field in the error.
int64_t parse_token_id(const nlohmann::json& value, const std::string& what,
                       const std::string& source);

struct ParsedBpeModel {
  BpeModel::Vocab vocab;
  std::vector<BpeModel::Merge> merges;  // rank order; "a b" strings and ["a", "b"] pairs alike
  BpeModel::Options options;            // ignore_merges, byte_fallback, unk_token, fuse_unk
  // A map, not a vector: ids come from the file, and a stray huge id must not size an allocation.
  std::unordered_map<int64_t, std::string> id_to_token;
  int64_t vocab_size = 0;  // largest id + 1
};

// "model": a BPE without dropout or subword prefixes/suffixes.
ParsedBpeModel parse_bpe_model(const nlohmann::json& model, const std::string& source);

// "added_tokens", with `tokenizers`' defaults (normalized = !special).
std::vector<AddedToken> parse_added_tokens(const nlohmann::json& added_tokens,
                                           const std::string& source);

// The special tokens "post_processor" puts around a single sequence (TemplateProcessing, also
// inside a Sequence; ByteLevel only trims offsets and adds nothing).
struct TemplateSpecials {
  bool present = false;  // a template was found: it decides BOS/EOS unless tokenizer_config does
  std::optional<int64_t> bos;  // the token before $A
  std::optional<int64_t> eos;  // the token after $A
};
TemplateSpecials parse_post_processor(const nlohmann::json& post_processor,
                                      const std::string& source);

}  // namespace llm::tokenizer_detail
