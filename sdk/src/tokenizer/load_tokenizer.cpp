// load_tokenizer(): picks the tokenizer file of a checkpoint directory and applies
// tokenizer_config.json's special-token settings; also Tokenizer::encode_for_model.
#include <filesystem>
#include <optional>
#include <string>

#include "byte_level_bpe_tokenizer.hpp"
#include "llm/error.hpp"
#include "llm/tokenizer.hpp"
#include "metaspace_bpe_tokenizer.hpp"
#include "sentencepiece_tokenizer.hpp"
#include "tokenizer_json_io.hpp"
#include "tokenizer_json_parts.hpp"

namespace llm {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using tokenizer_detail::TokenizerBase;

// The parts of tokenizer_config.json that change ids or text.
struct TokenizerConfig {
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_prefix_space;
  bool clean_up_tokenization_spaces = false;  // transformers 5's default
  std::string tokenizer_class;
};

TokenizerConfig read_tokenizer_config(const fs::path& dir) {
  TokenizerConfig config;
  const fs::path file = dir / "tokenizer_config.json";
  if (!fs::exists(file)) return config;  // a bare tokenizer file is a valid checkpoint too
  const json j = tokenizer_detail::read_tokenizer_json(file);
  const std::string source = file.string();
  if (!j.is_object()) throw UserError(source + ": expected a JSON object");
  config.add_bos_token = tokenizer_detail::optional_bool(j, "add_bos_token", source);
  config.add_eos_token = tokenizer_detail::optional_bool(j, "add_eos_token", source);
  config.bos_token = tokenizer_detail::token_content(j, "bos_token", source);
  config.eos_token = tokenizer_detail::token_content(j, "eos_token", source);
  config.add_prefix_space = tokenizer_detail::optional_bool(j, "add_prefix_space", source);
  config.clean_up_tokenization_spaces =
      tokenizer_detail::optional_bool(j, "clean_up_tokenization_spaces", source).value_or(false);
  const auto tokenizer_class = j.find("tokenizer_class");
  if (tokenizer_class != j.end() && tokenizer_class->is_string()) {
    config.tokenizer_class = tokenizer_class->get<std::string>();
  }
  return config;
}

// config.json's bos_token_id / eos_token_id (an int, or a list whose first entry is used), as a
// fallback when the tokenizer files name no such token. Unusable values are simply not a fallback.
std::optional<int64_t> model_config_token_id(const fs::path& dir, const char* key) {
  const fs::path file = dir / "config.json";
  if (!fs::exists(file)) return std::nullopt;
  const json j = tokenizer_detail::read_tokenizer_json(file);
  const auto it = j.is_object() ? j.find(key) : j.end();
  if (it == j.end()) return std::nullopt;
  const json& value = it->is_array() && !it->empty() ? (*it)[0] : *it;
  if (!value.is_number_integer() || value.get<int64_t>() < 0) return std::nullopt;
  return value.get<int64_t>();
}

struct LoadedTokenizer {
  std::unique_ptr<TokenizerBase> tokenizer;
  std::optional<int64_t> default_bos;  // the model file's own BOS/EOS, when it has them
  std::optional<int64_t> default_eos;
  std::string file;
  tokenizer_detail::TemplateSpecials template_specials;  // tokenizer.json's post_processor
};

LoadedTokenizer load_tokenizer_file(const fs::path& dir, const TokenizerConfig& config) {
  const fs::path json_file = dir / "tokenizer.json";
  const fs::path model_file = dir / "tokenizer.model";
  const bool has_model_file = fs::exists(model_file);
  if (fs::exists(json_file)) {
    json tokenizer_json = tokenizer_detail::read_tokenizer_json(json_file);
    const bool byte_level = tokenizer_detail::is_byte_level_tokenizer_json(tokenizer_json);
    // Llama checkpoints often ship a Metaspace tokenizer.json beside tokenizer.model: use the
    // latter; without it, the tokenizer.json's sentencepiece-style BPE.
    if (byte_level || !has_model_file) {
      LoadedTokenizer loaded;
      loaded.file = json_file.string();
      if (byte_level) {
        auto bpe =
            std::make_unique<tokenizer_detail::ByteLevelBpeTokenizer>(tokenizer_json, json_file);
        if (config.add_prefix_space) bpe->set_add_prefix_space(*config.add_prefix_space);
        loaded.tokenizer = std::move(bpe);
      } else {
        loaded.tokenizer =
            std::make_unique<tokenizer_detail::MetaspaceBpeTokenizer>(tokenizer_json, json_file);
      }
      const auto post_processor = tokenizer_json.find("post_processor");
      if (post_processor != tokenizer_json.end()) {
        loaded.template_specials =
            tokenizer_detail::parse_post_processor(*post_processor, loaded.file);
      }
      loaded.default_bos = loaded.template_specials.bos;
      loaded.default_eos = loaded.template_specials.eos;
      return loaded;
    }
  }
  if (has_model_file) {
    auto spm = std::make_unique<tokenizer_detail::SentencePieceTokenizer>(model_file);
    LoadedTokenizer loaded;
    loaded.default_bos = spm->model_bos_id();
    loaded.default_eos = spm->model_eos_id();
    loaded.file = model_file.string();
    loaded.tokenizer = std::move(spm);
    return loaded;
  }
  throw UserError(dir.string() +
                  ": no tokenizer found (expected tokenizer.json or tokenizer.model in it)");
}

// A named special token resolved to its id; the config.json id when the name is unknown or absent.
std::optional<int64_t> resolve_special(const TokenizerBase& tokenizer,
                                       const std::optional<std::string>& name,
                                       std::optional<int64_t> model_default, const fs::path& dir,
                                       const char* config_key) {
  if (name) {
    if (auto id = tokenizer.find_token_id(*name)) return id;
  } else if (model_default) {
    return model_default;
  }
  auto id = model_config_token_id(dir, config_key);
  if (id && *id >= tokenizer.vocab_size()) return std::nullopt;
  return id;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  if (!fs::is_directory(dir)) {
    throw UserError(dir.string() +
                    ": not a directory (expected a checkpoint or tokenizer directory)");
  }
  const TokenizerConfig config = read_tokenizer_config(dir);
  LoadedTokenizer loaded = load_tokenizer_file(dir, config);
  TokenizerBase& tokenizer = *loaded.tokenizer;

  auto bos = resolve_special(tokenizer, config.bos_token, loaded.default_bos, dir, "bos_token_id");
  auto eos = resolve_special(tokenizer, config.eos_token, loaded.default_eos, dir, "eos_token_id");
  // transformers' LlamaTokenizer defaults add_bos_token to true (and rebuilds the post-processor
  // from it); for other classes a tokenizer.json post-processor template (Llama 3's
  // "<|begin_of_text|> $A") decides, else nothing is added.
  const bool llama_class = config.tokenizer_class.rfind("Llama", 0) == 0 ||
                           config.tokenizer_class.rfind("CodeLlama", 0) == 0;
  const tokenizer_detail::TemplateSpecials& specials = loaded.template_specials;
  bool add_bos = config.add_bos_token.value_or(llama_class);
  bool add_eos = config.add_eos_token.value_or(false);
  if (specials.present && !llama_class) {
    if (!config.add_bos_token) {
      add_bos = specials.bos.has_value();
      if (specials.bos) bos = specials.bos;  // the token the template adds, whatever its name
    }
    if (!config.add_eos_token) {
      add_eos = specials.eos.has_value();
      if (specials.eos) eos = specials.eos;
    }
  }
  const std::string config_file = (dir / "tokenizer_config.json").string();
  if (add_bos && !bos) {
    throw UserError(config_file + ": add_bos_token is true but bos_token '" +
                    config.bos_token.value_or("") + "' is not in " + loaded.file);
  }
  if (add_eos && !eos) {
    throw UserError(config_file + ": add_eos_token is true but eos_token '" +
                    config.eos_token.value_or("") + "' is not in " + loaded.file);
  }
  tokenizer.set_special_tokens(bos, eos, add_bos, add_eos);
  tokenizer.set_clean_up_tokenization_spaces(config.clean_up_tokenization_spaces);
  return std::move(loaded.tokenizer);
}

std::vector<int64_t> Tokenizer::encode_for_model(const std::string& text, bool append_eos) const {
  std::vector<int64_t> ids;
  if (add_bos_ && bos_id_) ids.push_back(*bos_id_);
  const std::vector<int64_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  if (append_eos || add_eos_) {
    if (!eos_id_) {
      throw UserError(
          "tokenizer: an EOS token was requested but the tokenizer defines none "
          "(set eos_token in tokenizer_config.json)");
    }
    ids.push_back(*eos_id_);
  }
  return ids;
}

}  // namespace llm
