#include "download/hub_client.hpp"

#include <curl/curl.h>
#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>

#include "llm/error.hpp"
#include "llm/json_file.hpp"

namespace llmhost::download {

namespace {

std::string escaped(const std::string& text) {
  char* out = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  if (out == nullptr) throw std::bad_alloc();
  std::string result(out);
  curl_free(out);
  return result;
}

// Escapes each segment, keeps the '/' between them (quote(path) in Python).
std::string escaped_path(const std::string& path) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    out +=
        escaped(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

const char* kind_name(RepoType type) { return type == RepoType::kModel ? "model" : "dataset"; }

bool is_repo_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

bool is_hex_digest(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

RepoType parse_repo_type(const std::string& text) {
  if (text == "model") return RepoType::kModel;
  if (text == "dataset") return RepoType::kDataset;
  throw llm::UserError("--repo_type '" + text + "' is not one of model | dataset");
}

void check_repo_id(const std::string& repo_id) {
  const auto bad = [&] {
    throw llm::UserError("--repo_id '" + repo_id +
                         "' is not a hub repo id (expected ORG/NAME, e.g. EleutherAI/pythia-160m)");
  };
  const size_t slash = repo_id.find('/');
  if (slash != std::string::npos && repo_id.find('/', slash + 1) != std::string::npos) bad();
  const std::vector<std::string> parts =
      slash == std::string::npos
          ? std::vector<std::string>{repo_id}
          : std::vector<std::string>{repo_id.substr(0, slash), repo_id.substr(slash + 1)};
  for (const std::string& part : parts) {
    if (part.empty() || part == "." || part == ".." ||
        !std::all_of(part.begin(), part.end(), is_repo_name_char)) {
      bad();
    }
  }
}

std::string hub_endpoint() {
  const char* env = std::getenv("HF_ENDPOINT");
  std::string endpoint = env != nullptr && *env != '\0' ? env : kDefaultEndpoint;
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (endpoint.rfind("http://", 0) != 0 && endpoint.rfind("https://", 0) != 0) {
    throw llm::UserError("HF_ENDPOINT '" + endpoint + "' is not an http(s) URL");
  }
  return endpoint;
}

std::string describe(const RepoRef& repo) {
  return std::string(kind_name(repo.type)) + " '" + repo.repo_id + "' at revision '" +
         repo.revision + "'";
}

std::string listing_url(const std::string& endpoint, const RepoRef& repo) {
  return endpoint + "/api/" + kind_name(repo.type) + "s/" + repo.repo_id + "/revision/" +
         escaped(repo.revision) + "?blobs=true";
}

std::string resolve_url(const std::string& endpoint, const RepoRef& repo, const std::string& file) {
  return endpoint + (repo.type == RepoType::kDataset ? "/datasets/" : "/") + repo.repo_id +
         "/resolve/" + escaped(repo.revision) + "/" + escaped_path(file);
}

bool is_safe_relative_path(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string::npos) return false;
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    if (slash == std::string::npos) slash = name.size();
    const std::string segment = name.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    start = slash + 1;
  }
  return true;
}

std::vector<HubFile> parse_listing(const std::string& json_text, const std::string& source) {
  llm::Json listing;
  try {
    listing = llm::Json::parse(json_text);
  } catch (const llm::Json::exception&) {
    throw llm::UserError(source + ": the hub's file listing is not valid JSON");
  }
  if (!listing.is_object() || !listing.contains("siblings") || !listing["siblings"].is_array()) {
    throw llm::UserError(source + ": the hub's file listing has no 'siblings' array");
  }
  std::vector<HubFile> files;
  for (const auto& sibling : listing["siblings"]) {
    if (!sibling.is_object() || !sibling.contains("rfilename") ||
        !sibling["rfilename"].is_string()) {
      throw llm::UserError(source + ": a 'siblings' entry has no 'rfilename' string");
    }
    HubFile file;
    file.name = sibling["rfilename"].get<std::string>();
    if (!is_safe_relative_path(file.name)) {
      throw llm::UserError(source + ": refusing the unsafe file name '" + file.name +
                           "' (absolute, or with '..'): it would land outside the destination");
    }
    if (sibling.contains("size") && sibling["size"].is_number_unsigned()) {
      file.size = sibling["size"].get<uint64_t>();
    }
    if (sibling.contains("lfs") && sibling["lfs"].is_object()) {
      const auto& lfs = sibling["lfs"];
      if (lfs.contains("size") && lfs["size"].is_number_unsigned()) {
        file.size = lfs["size"].get<uint64_t>();
      }
      if (lfs.contains("sha256") && lfs["sha256"].is_string()) {
        std::string digest = lfs["sha256"].get<std::string>();
        std::transform(digest.begin(), digest.end(), digest.begin(), ::tolower);
        if (!is_hex_digest(digest)) {
          throw llm::UserError(source + ": '" + file.name + "' has a malformed lfs.sha256");
        }
        file.sha256 = digest;
      }
    }
    files.push_back(std::move(file));
  }
  return files;
}

std::vector<std::string> split_patterns(const std::string& comma_separated) {
  std::vector<std::string> patterns;
  size_t start = 0;
  while (start <= comma_separated.size()) {
    size_t comma = comma_separated.find(',', start);
    if (comma == std::string::npos) comma = comma_separated.size();
    std::string pattern = comma_separated.substr(start, comma - start);
    pattern.erase(0, pattern.find_first_not_of(" \t"));
    pattern.erase(pattern.find_last_not_of(" \t") + 1);
    if (!pattern.empty()) patterns.push_back(pattern);
    start = comma + 1;
  }
  return patterns;
}

std::vector<std::string> default_include(RepoType type) {
  if (type == RepoType::kDataset) return {"*.jsonl", "*.json"};
  return {"config.json",           "generation_config.json",
          "*.safetensors",         "model.safetensors.index.json",
          "tokenizer.json",        "tokenizer.model",
          "tokenizer_config.json", "special_tokens_map.json"};
}

std::vector<HubFile> select_files(const std::vector<HubFile>& files,
                                  const std::vector<std::string>& patterns) {
  std::vector<HubFile> selected;
  for (const auto& file : files) {
    const bool wanted = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
      return fnmatch(p.c_str(), file.name.c_str(), 0) == 0;
    });
    if (wanted) selected.push_back(file);
  }
  return selected;
}

void require_safetensors(const std::vector<HubFile>& files, const RepoRef& repo) {
  const auto has = [&](auto predicate) {
    return std::any_of(files.begin(), files.end(), predicate);
  };
  const bool safetensors = has([](const HubFile& f) { return ends_with(f.name, ".safetensors"); });
  const bool pickles = has([](const HubFile& f) {
    const auto base = f.name.substr(f.name.rfind('/') + 1);
    return base.rfind("pytorch_model", 0) == 0 && ends_with(base, ".bin");
  });
  if (!safetensors && pickles) {
    throw llm::UserError(describe(repo) +
                         " has only PyTorch pickle weights (pytorch_model*.bin), which llmhost "
                         "does not load (a pickle can run code): pick a --revision with "
                         "safetensors (e.g. the hub's conversion PR, refs/pr/N) or convert them "
                         "with safetensors' convert.py");
  }
}

bool is_retryable_status(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

void throw_http_error(const TransferResult& result, const RepoRef& repo,
                      const std::string& endpoint, const std::string& what, bool token_sent) {
  const std::string status = "HTTP " + std::to_string(result.status);
  const std::string how_to_pass = "pass --access_token TOKEN or set HF_TOKEN";
  if (result.status == 401 || result.status == 403) {
    if (result.hub_error_code == "RepoNotFound") {
      throw llm::UserError(describe(repo) + " was not found on " + endpoint +
                           ", or it is private (" + status +
                           "): check --repo_id and --repo_type, or " + how_to_pass);
    }
    if (token_sent) {
      throw llm::UserError(describe(repo) +
                           " is gated or private and the hub refused the access "
                           "token for " +
                           what + " (" + status +
                           "): request access on the repo's hub page and use a token that has it");
    }
    throw llm::UserError(describe(repo) + " is gated or private (" + status + " for " + what +
                         "): request access on the repo's hub page, then " + how_to_pass);
  }
  if (result.status == 404) {
    if (result.hub_error_code == "RevisionNotFound") {
      throw llm::UserError("revision '" + repo.revision + "' not found in " +
                           std::string(repo.type == RepoType::kModel ? "model" : "dataset") + " '" +
                           repo.repo_id + "' on " + endpoint + " (check --revision)");
    }
    if (result.hub_error_code == "EntryNotFound") {
      throw llm::UserError(what + " not found in " + describe(repo) + " (" + status + ")");
    }
    throw llm::UserError(describe(repo) + " not found on " + endpoint + " (" + status + " for " +
                         what + "): check --repo_id, --repo_type and --revision");
  }
  throw llm::UserError(status + " from " +
                       (result.final_host.empty() ? endpoint : result.final_host) + " for " + what +
                       " of " + describe(repo));
}

}  // namespace llmhost::download
