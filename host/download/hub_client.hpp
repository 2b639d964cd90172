#pragma once
// The Hugging Face hub's public HTTP interface, as huggingface_hub uses it: the file listing from
// /api/{models|datasets}/{repo}/revision/{rev}?blobs=true, files from
// /{repo}/resolve/{rev}/{file} (/datasets/{repo}/resolve/... for datasets).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "download/http_transfer.hpp"

namespace llmhost::download {

enum class RepoType { kModel, kDataset };

struct RepoRef {
  std::string repo_id;  // ORG/NAME (or a legacy bare NAME such as gpt2)
  RepoType type = RepoType::kModel;
  std::string revision = "main";
};

struct HubFile {
  std::string name;              // rfilename, relative, '/'-separated
  std::optional<uint64_t> size;  // from the listing (blobs=true), when given
  std::string sha256;            // lowercase hex, only for LFS files
};

inline constexpr const char* kDefaultEndpoint = "https://huggingface.co";

// UserErrors name the flag.
RepoType parse_repo_type(const std::string& text);  // --repo_type model|dataset
void check_repo_id(const std::string& repo_id);     // --repo_id ORG/NAME
// HF_ENDPOINT without a trailing slash, or the public hub.
std::string hub_endpoint();
// "model 'ORG/NAME' at revision 'main'"
std::string describe(const RepoRef& repo);

std::string listing_url(const std::string& endpoint, const RepoRef& repo);
std::string resolve_url(const std::string& endpoint, const RepoRef& repo, const std::string& file);

// A relative path that stays inside the destination: no absolute path, no '..', '.', '\\' or
// empty segment.
bool is_safe_relative_path(const std::string& name);
// Parses the listing JSON; UserError naming `source` on malformed JSON or an unsafe file name.
std::vector<HubFile> parse_listing(const std::string& json_text, const std::string& source);

// --include: comma-separated fnmatch patterns ('*' also crosses '/', as huggingface_hub's).
std::vector<std::string> split_patterns(const std::string& comma_separated);
std::vector<std::string> default_include(RepoType type);
std::vector<HubFile> select_files(const std::vector<HubFile>& files,
                                  const std::vector<std::string>& patterns);
// A model repo with pickled weights (pytorch_model*.bin) and no safetensors: UserError.
void require_safetensors(const std::vector<HubFile>& files, const RepoRef& repo);

// Statuses worth retrying: the server is busy or failing, not refusing.
bool is_retryable_status(long status);
// One-line UserError for a refused request (401/403/404/...): says gated, not found, and how to
// pass a token; never includes the token.
[[noreturn]] void throw_http_error(const TransferResult& result, const RepoRef& repo,
                                   const std::string& endpoint, const std::string& what,
                                   bool token_sent);

}  // namespace llmhost::download
