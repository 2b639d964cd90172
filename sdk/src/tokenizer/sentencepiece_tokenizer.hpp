#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "added_tokens.hpp"
#include "tokenizer_base.hpp"

struct llm_spm_model;

namespace llm::tokenizer_detail {

// A sentencepiece model (tokenizer.model) run through libsentencepiece (behind the module of
// sentencepiece_runtime.hpp), with the Hugging Face
// LlamaTokenizer conventions around it: special-token strings in the text map to their ids, and
// decoding keeps (or skips) special tokens by name.
class SentencePieceTokenizer : public TokenizerBase {
 public:
  // Throws UserError naming `file` when it is not a sentencepiece model.
  explicit SentencePieceTokenizer(const std::filesystem::path& file);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids,
                     bool skip_special_tokens = false) const override;
  std::string token_text(int64_t id) const override;
  int64_t vocab_size() const override;
  std::string kind() const override { return "sentencepiece"; }
  std::optional<int64_t> find_token_id(const std::string& token) const override;

  // The model's own <s> / </s>, used when tokenizer_config.json names none.
  std::optional<int64_t> model_bos_id() const;
  std::optional<int64_t> model_eos_id() const;

 private:
  bool is_special(int64_t id) const;
  void check_id(int64_t id) const;

  std::string source_;
  std::unique_ptr<llm_spm_model, void (*)(llm_spm_model*)> model_;
  std::vector<std::string> pieces_;
  std::vector<int> piece_flags_;  // LLM_SPM_* per id
  AddedTokenSplitter special_tokens_;
  bool adds_dummy_prefix_ = true;
};

}  // namespace llm::tokenizer_detail
