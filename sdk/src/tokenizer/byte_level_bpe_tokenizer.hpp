#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "added_tokens.hpp"
#include "bpe_model.hpp"
#include "json_bpe_tokenizer.hpp"
#include "regex_pretokenizer.hpp"
#include "utf8_text.hpp"

namespace llm::tokenizer_detail {

// True when tokenizer.json describes a byte-level pipeline (GPT-2, GPT-NeoX/Pythia, Llama 3,
// Qwen2) rather than, say, Llama 2's Metaspace one.
bool is_byte_level_tokenizer_json(const nlohmann::json& tokenizer_json);

// Byte-level BPE as Hugging Face `tokenizers` runs it from tokenizer.json: added tokens split out
// first, Unicode normalisation, the file's Split patterns (Llama 3's, Qwen2's), ByteLevel
// pre-tokenisation (GPT-2 regex unless use_regex is false, optional prefix space), rank-based BPE,
// ByteLevel decoding.
class ByteLevelBpeTokenizer : public JsonBpeTokenizer {
 public:
  // Throws UserError naming `file` for anything it cannot honour.
  ByteLevelBpeTokenizer(const nlohmann::json& tokenizer_json, const std::filesystem::path& file);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids,
                     bool skip_special_tokens = false) const override;
  std::string kind() const override { return "byte-level-bpe"; }

  // tokenizer_config.json may override the pre-tokeniser's prefix space, as transformers allows.
  void set_add_prefix_space(bool add_prefix_space) { add_prefix_space_ = add_prefix_space; }

 private:
  void parse_normalizer(const nlohmann::json& normalizer);
  void parse_pre_tokenizer(const nlohmann::json& pre_tokenizer);
  std::string normalize(std::string_view text) const;
  void encode_plain_text(std::string_view text, std::vector<int64_t>& ids) const;
  void encode_byte_level(std::string_view piece, std::vector<int64_t>& ids) const;

  std::vector<UnicodeForm> normalizers_;
  std::vector<std::unique_ptr<RegexPreTokenizer>> splits_;  // Split steps before ByteLevel
  bool add_prefix_space_ = false;
  std::unique_ptr<RegexPreTokenizer> byte_level_regex_;  // GPT-2's, unless use_regex is false
};

}  // namespace llm::tokenizer_detail
