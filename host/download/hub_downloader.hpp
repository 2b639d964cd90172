#pragma once
// Fetches a repo's listing and its files, resumably: each file goes to <file>.incomplete, resumes
// with a Range request, is checked against the listed size and LFS SHA-256, then renamed into
// place. Network failures and busy servers are retried with backoff; refusals are UserErrors.
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "download/hub_client.hpp"
#include "download/retry_policy.hpp"

namespace llmhost::download {

struct DownloadOptions {
  RepoRef repo;
  std::string endpoint;      // hub_endpoint()
  std::string bearer_token;  // empty: anonymous
  RetryPolicy retry;
  bool interactive = false;  // redrawn progress bars (stderr is a terminal)
};

enum class FileStatus { kDownloaded, kResumed, kAlreadyPresent };
const char* to_string(FileStatus status);

struct FileReport {
  std::string name;
  uint64_t size = 0;  // bytes of the final file
  FileStatus status = FileStatus::kDownloaded;
  uint64_t bytes_transferred = 0;  // over the network in this run
};

class HubDownloader {
 public:
  HubDownloader(DownloadOptions options, std::ostream& err);

  std::vector<HubFile> list_files();
  FileReport download(const HubFile& file, const std::filesystem::path& destination_dir);

  static std::filesystem::path partial_path(const std::filesystem::path& final_path);

 private:
  bool token_sent() const { return !options_.bearer_token.empty(); }
  // Throws the final network error when retries are spent; otherwise warns and sleeps.
  void before_retry(int retry, const std::string& what, const std::string& failure,
                    const std::string& host, const std::string& kept_note);
  void verify_and_install(const HubFile& file, const std::filesystem::path& partial,
                          const std::filesystem::path& final_path);

  DownloadOptions options_;
  std::ostream& err_;
};

}  // namespace llmhost::download
