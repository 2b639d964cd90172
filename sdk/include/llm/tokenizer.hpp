#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llm/export.hpp"

namespace llm {

// A text <-> token-id codec loaded from a checkpoint directory's tokenizer files.
class LLM_API Tokenizer {
 public:
  virtual ~Tokenizer();

  // Plain encoding: no BOS/EOS added (Hugging Face `add_special_tokens=False`).
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  // Hugging Face `decode(ids)` (special tokens kept unless skip_special_tokens).
  virtual std::string decode(const std::vector<int64_t>& ids,
                             bool skip_special_tokens = false) const = 0;
  // The vocabulary entry of one id as stored ("Ġworld", "▁world", "<0x0A>").
  virtual std::string token_text(int64_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  // "byte-level-bpe", "sentencepiece" (tokenizer.model) or "sentencepiece-bpe" (a Llama 2 style
  // tokenizer.json without tokenizer.model)
  virtual std::string kind() const = 0;

  // From tokenizer_config.json (and the tokenizer itself): Llama adds <s>, Pythia adds nothing.
  std::optional<int64_t> bos_id() const { return bos_id_; }
  std::optional<int64_t> eos_id() const { return eos_id_; }
  bool adds_bos() const { return add_bos_; }
  bool adds_eos() const { return add_eos_; }

  // encode() plus BOS per the tokenizer config, plus EOS when asked (or when the config adds it).
  std::vector<int64_t> encode_for_model(const std::string& text, bool append_eos = false) const;

 protected:
  std::optional<int64_t> bos_id_;
  std::optional<int64_t> eos_id_;
  bool add_bos_ = false;
  bool add_eos_ = false;
};

// Loads tokenizer.json (byte-level BPE; or sentencepiece-style BPE when there is no
// tokenizer.model) or tokenizer.model (sentencepiece) plus tokenizer_config.json from `dir`;
// BOS/EOS follow tokenizer_config.json, else tokenizer.json's post-processor template. UserError
// names the file (and the component) when none is usable.
LLM_API std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace llm
