#pragma once
// One HTTP GET through libcurl's easy API. Redirects are followed (the hub sends large files to a
// CDN); a bearer token is a custom Authorization header, which libcurl (>= 7.58) sends only to the
// first host, so it never reaches the CDN, as huggingface_hub behaves.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace llmhost::download {

struct HttpRequest {
  std::string url;
  std::string bearer_token;  // empty: no Authorization header
  uint64_t resume_from = 0;  // > 0: "Range: bytes=N-"
};

enum class TransferOutcome {
  kComplete,      // a response arrived in full (any status: check `status`)
  kNetworkError,  // no full response: refused, reset, timed out, cut midway (worth a retry)
  kWriteError,    // the local file could not be written (`write_errno`)
};

struct TransferResult {
  TransferOutcome outcome = TransferOutcome::kNetworkError;
  long status = 0;             // the final HTTP status (after redirects), 0 when none
  std::string network_error;   // libcurl's message for kNetworkError
  std::string hub_error_code;  // the hub's X-Error-Code header (GatedRepo, RepoNotFound, ...)
  std::string body;            // fetch_text: the body; fetch_to_file: an error body (capped)
  bool range_ignored = false;  // asked for a range, got 200: the file restarted from zero
  int write_errno = 0;
  std::string final_host;  // host of the last URL fetched (after redirects)
};

bool is_success(long status);

// GETs a small document (the file listing) into memory, at most `max_bytes`.
TransferResult fetch_text(const HttpRequest& request, size_t max_bytes);

// GETs a file body into `partial_path`: appends after `resume_from` bytes when the server answers
// 206, truncates and starts over when it answers 200. Error bodies do not touch the file.
// `progress(bytes_in_file)` is called as data arrives.
using ProgressCallback = std::function<void(uint64_t bytes_in_file, bool restarted)>;
TransferResult fetch_to_file(const HttpRequest& request, const std::filesystem::path& partial_path,
                             const ProgressCallback& progress);

}  // namespace llmhost::download
