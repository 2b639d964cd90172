#include "sentencepiece_tokenizer.hpp"

#include "llm/error.hpp"
#include "sentencepiece_runtime.hpp"
#include "utf8_text.hpp"

namespace llm::tokenizer_detail {
namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // "▁", sentencepiece's space

// "<0x0A>" -> 0x0A; byte pieces always have this exact shape.
int parse_byte_piece(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = piece[i];
    const int digit = (c >= '0' && c <= '9')   ? c - '0'
                      : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                      : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                               : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

// Hugging Face's ByteFallback decoder: a run of byte pieces becomes its UTF-8 text, or one U+FFFD
// per byte when the run is not valid UTF-8.
void flush_bytes(std::string& bytes, std::string& out) {
  if (bytes.empty()) return;
  if (is_valid_utf8(bytes)) {
    out += bytes;
  } else {
    for (size_t i = 0; i < bytes.size(); ++i) out += kReplacementCharacter;
  }
  bytes.clear();
}

void append_ids(void* context, const int* ids, size_t count) {
  auto& out = *static_cast<std::vector<int64_t>*>(context);
  out.insert(out.end(), ids, ids + count);
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& file)
    : source_(file.string()), model_(nullptr, SentencePieceRuntime::get().free) {
  const SentencePieceRuntime& spm = SentencePieceRuntime::get();
  char error[512] = "";
  model_.reset(spm.load(source_.c_str(), error, sizeof(error)));
  if (!model_) {
    throw UserError(source_ + ": not a readable sentencepiece model (" + error + ")");
  }
  const int piece_count = spm.piece_count(model_.get());
  if (piece_count <= 0) throw UserError(source_ + ": the sentencepiece model has no pieces");
  pieces_.reserve(static_cast<size_t>(piece_count));
  piece_flags_.reserve(static_cast<size_t>(piece_count));
  for (int id = 0; id < piece_count; ++id) {
    size_t length = 0;
    const char* text = spm.piece(model_.get(), id, &length);
    pieces_.emplace_back(text, length);
    piece_flags_.push_back(spm.piece_flags(model_.get(), id));
  }

  // transformers splits the input on the special tokens' text (<s>, </s>, <unk>) before running
  // sentencepiece, which would otherwise spell "<s>" out letter by letter.
  std::vector<AddedToken> specials;
  for (int id = 0; id < piece_count; ++id) {
    if (!is_special(id)) continue;
    AddedToken token;
    token.id = id;
    token.content = pieces_[static_cast<size_t>(id)];
    token.special = true;
    specials.push_back(std::move(token));
  }
  special_tokens_ = AddedTokenSplitter(std::move(specials));

  // Whether the normaliser adds the dummy "▁" prefix (Llama's does); the decoder strips it again.
  std::vector<int64_t> probe;
  if (spm.encode(model_.get(), "a", 1, &append_ids, &probe, error, sizeof(error)) == 0 &&
      !probe.empty()) {
    adds_dummy_prefix_ =
        pieces_[static_cast<size_t>(probe.front())].compare(0, kMetaspace.size(), kMetaspace) == 0;
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

bool SentencePieceTokenizer::is_special(int64_t id) const {
  return (piece_flags_[static_cast<size_t>(id)] & (LLM_SPM_CONTROL | LLM_SPM_UNKNOWN)) != 0;
}

void SentencePieceTokenizer::check_id(int64_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw UserError(source_ + ": no token with id " + std::to_string(id) + " (expected 0.." +
                    std::to_string(vocab_size() - 1) + ")");
  }
}

// Each text segment is encoded by sentencepiece on its own, so each gets the dummy prefix: the
// legacy LlamaTokenizer (transformers 4's default for Llama-2 configs) and lit-gpt do exactly
// this, and it is what the project's golden ids record. Consequences worth knowing:
//  - encode(" 14") gives the "▁▁" piece (dummy prefix + the text's own space), then "1", "4":
//    identical to HF LlamaTokenizer(legacy=True).encode(" 14", add_special_tokens=False).
//    transformers 5's Metaspace(prepend_scheme="first") would skip the prefix there ("▁" + "14").
//  - text after a special token also gets a prefix ("Hello <s>." -> ..., <s>, "▁.").
std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const std::string valid = to_valid_utf8(text);  // Python strings cannot hold invalid UTF-8
  std::vector<int64_t> ids;
  for (const TextSegment& segment : special_tokens_.split(valid)) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
      continue;
    }
    char error[512] = "";
    if (SentencePieceRuntime::get().encode(model_.get(), segment.text.data(), segment.text.size(),
                                           &append_ids, &ids, error, sizeof(error)) != 0) {
      throw UserError(source_ + ": sentencepiece could not encode the text (" + error + ")");
    }
  }
  return ids;
}

// Mirrors transformers' Llama decoder (Replace "▁" -> " ", ByteFallback, Fuse, Strip one leading
// space), which equals sentencepiece's own decoding for text without special tokens and keeps
// special tokens by name ("<s>") instead of dropping them.
std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids,
                                           bool skip_special_tokens) const {
  std::string out, pending_bytes;
  for (int64_t id : ids) {
    check_id(id);
    const std::string& piece = pieces_[static_cast<size_t>(id)];
    if (is_special(id)) {
      if (skip_special_tokens) continue;
      flush_bytes(pending_bytes, out);
      out += piece;
      continue;
    }
    const int byte =
        (piece_flags_[static_cast<size_t>(id)] & LLM_SPM_BYTE) != 0 ? parse_byte_piece(piece) : -1;
    if (byte >= 0) {
      pending_bytes.push_back(static_cast<char>(byte));
      continue;
    }
    flush_bytes(pending_bytes, out);
    for (size_t pos = 0; pos < piece.size();) {
      if (piece.compare(pos, kMetaspace.size(), kMetaspace) == 0) {
        out += ' ';
        pos += kMetaspace.size();
      } else {
        out += piece[pos++];
      }
    }
  }
  flush_bytes(pending_bytes, out);
  if (adds_dummy_prefix_ && !out.empty() && out.front() == ' ') out.erase(0, 1);
  return finish_decoded_text(std::move(out));
}

std::string SentencePieceTokenizer::token_text(int64_t id) const {
  check_id(id);
  return pieces_[static_cast<size_t>(id)];
}

int64_t SentencePieceTokenizer::vocab_size() const { return static_cast<int64_t>(pieces_.size()); }

std::optional<int64_t> SentencePieceTokenizer::find_token_id(const std::string& token) const {
  const int id = SentencePieceRuntime::get().find_piece(model_.get(), token.data(), token.size());
  return id >= 0 ? std::optional<int64_t>(id) : std::nullopt;
}

std::optional<int64_t> SentencePieceTokenizer::model_bos_id() const {
  const int id = SentencePieceRuntime::get().bos_id(model_.get());
  return id >= 0 && id < vocab_size() ? std::optional<int64_t>(id) : std::nullopt;
}

std::optional<int64_t> SentencePieceTokenizer::model_eos_id() const {
  const int id = SentencePieceRuntime::get().eos_id(model_.get());
  return id >= 0 && id < vocab_size() ? std::optional<int64_t>(id) : std::nullopt;
}

}  // namespace llm::tokenizer_detail
