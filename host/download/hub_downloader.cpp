#include "download/hub_downloader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <ostream>
#include <thread>

#include "download/progress_bar.hpp"
#include "download/sha256.hpp"
#include "llm/error.hpp"

namespace llmhost::download {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxListingBytes = size_t{64} << 20;

uint64_t size_or_zero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// The rename is durable only once the directory entry is on disk.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string host_or(const TransferResult& result, const std::string& fallback) {
  return result.final_host.empty() ? fallback : result.final_host;
}

}  // namespace

const char* to_string(FileStatus status) {
  switch (status) {
    case FileStatus::kDownloaded:
      return "downloaded";
    case FileStatus::kResumed:
      return "resumed";
    case FileStatus::kAlreadyPresent:
      return "present";
  }
  return "downloaded";
}

HubDownloader::HubDownloader(DownloadOptions options, std::ostream& err)
    : options_(std::move(options)), err_(err) {}

fs::path HubDownloader::partial_path(const fs::path& final_path) {
  fs::path partial = final_path;
  partial += ".incomplete";
  return partial;
}

void HubDownloader::before_retry(int retry, const std::string& what, const std::string& failure,
                                 const std::string& host, const std::string& kept_note) {
  const int attempts = retry + 1;
  if (retry >= options_.retry.max_retries) {
    throw llm::UserError("network failure fetching " + what + " from " + host + " after " +
                         std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s") + ": " +
                         failure + kept_note);
  }
  const auto delay = backoff_delay(options_.retry, retry + 1);
  err_ << "llmhost: warning: " << what << ": " << failure << "; retrying in "
       << format_duration(static_cast<double>(delay.count()) / 1000.0) << " (attempt "
       << attempts + 1 << " of " << options_.retry.max_retries + 1 << ")\n"
       << std::flush;
  std::this_thread::sleep_for(delay);
}

std::vector<HubFile> HubDownloader::list_files() {
  const std::string url = listing_url(options_.endpoint, options_.repo);
  const std::string what = "the file list of " + describe(options_.repo);
  for (int retry = 0;; ++retry) {
    const TransferResult result = fetch_text({url, options_.bearer_token, 0}, kMaxListingBytes);
    std::string failure;
    if (result.outcome != TransferOutcome::kComplete) {
      failure = result.network_error;
    } else if (is_success(result.status)) {
      return parse_listing(result.body, url);
    } else if (is_retryable_status(result.status)) {
      failure = "HTTP " + std::to_string(result.status);
    } else {
      throw_http_error(result, options_.repo, options_.endpoint, "the file list", token_sent());
    }
    before_retry(retry, what, failure, host_or(result, options_.endpoint), "");
  }
}

FileReport HubDownloader::download(const HubFile& file, const fs::path& destination_dir) {
  const fs::path final_path = destination_dir / fs::path(file.name);
  const fs::path partial = partial_path(final_path);
  FileReport report;
  report.name = file.name;

  std::error_code ec;
  if (fs::is_regular_file(final_path, ec) &&
      (!file.size || fs::file_size(final_path, ec) == *file.size)) {
    report.size = size_or_zero(final_path);
    report.status = FileStatus::kAlreadyPresent;
    return report;
  }
  fs::create_directories(final_path.parent_path(), ec);
  if (ec) {
    throw llm::UserError(final_path.parent_path().string() +
                         ": cannot create directory: " + ec.message());
  }

  const std::string url = resolve_url(options_.endpoint, options_.repo, file.name);
  const std::string what = "'" + file.name + "' of " + describe(options_.repo);
  const std::string kept_note =
      "; the partial download is kept in " + partial.string() + ", run again to resume";
  for (int retry = 0;; ++retry) {
    uint64_t on_disk = size_or_zero(partial);
    if (file.size && on_disk > *file.size) on_disk = 0;  // stale: fetch_to_file truncates
    if (file.size && *file.size > 0 && on_disk == *file.size) break;  // complete, not yet renamed
    if (on_disk > 0) report.status = FileStatus::kResumed;

    ProgressBar bar(err_, options_.interactive, file.name, file.size, on_disk);
    const TransferResult result =
        fetch_to_file({url, options_.bearer_token, on_disk}, partial,
                      [&](uint64_t bytes_in_file, bool restarted) {
                        if (restarted && bytes_in_file > 0 && on_disk > 0) {
                          bar.restart_from_zero();
                          on_disk = 0;
                        }
                        bar.update(bytes_in_file);
                      });
    const uint64_t now_on_disk = size_or_zero(partial);
    if (result.range_ignored) {
      report.bytes_transferred += now_on_disk;
      report.status = FileStatus::kDownloaded;
    } else if (now_on_disk > on_disk) {
      report.bytes_transferred += now_on_disk - on_disk;
    }

    std::string failure;
    if (result.outcome == TransferOutcome::kWriteError) {
      bar.abandon();
      throw llm::UserError(partial.string() + ": cannot write (" +
                           std::strerror(result.write_errno) + ")" + kept_note);
    }
    if (result.outcome == TransferOutcome::kNetworkError) {
      failure = result.network_error;
    } else if (result.status == 416) {
      fs::remove(partial, ec);  // our partial file does not match the server's: start over
      failure = "the server refused to resume (HTTP 416)";
    } else if (is_retryable_status(result.status)) {
      failure = "HTTP " + std::to_string(result.status);
    } else if (!is_success(result.status)) {
      bar.abandon();
      if (size_or_zero(partial) == 0) fs::remove(partial, ec);  // nothing worth resuming
      throw_http_error(result, options_.repo, options_.endpoint, "'" + file.name + "'",
                       token_sent());
    } else if (!file.size || now_on_disk == *file.size) {
      bar.finish();
      break;
    } else if (now_on_disk < *file.size) {
      failure = "the transfer ended after " + std::to_string(now_on_disk) + " of " +
                std::to_string(*file.size) + " bytes";
    } else {
      bar.abandon();
      fs::remove(partial, ec);
      throw llm::UserError(what + ": received " + std::to_string(now_on_disk) +
                           " bytes but the hub lists " + std::to_string(*file.size) +
                           "; the download was removed, run again");
    }
    bar.abandon();
    before_retry(retry, what, failure, host_or(result, options_.endpoint), kept_note);
  }

  verify_and_install(file, partial, final_path);
  report.size = size_or_zero(final_path);
  return report;
}

void HubDownloader::verify_and_install(const HubFile& file, const fs::path& partial,
                                       const fs::path& final_path) {
  std::error_code ec;
  if (!file.sha256.empty()) {
    const std::string actual = sha256_of_file(partial);
    if (actual != file.sha256) {
      fs::remove(partial, ec);
      throw llm::UserError("'" + file.name + "' of " + describe(options_.repo) +
                           " failed its SHA-256 check (the hub lists " + file.sha256 +
                           ", the download has " + actual +
                           "): the corrupt download was removed, run again");
    }
  }
  fs::rename(partial, final_path, ec);
  if (ec) {
    throw llm::UserError(final_path.string() +
                         ": cannot move the finished download into place: " + ec.message());
  }
  sync_directory(final_path.parent_path());
}

}  // namespace llmhost::download
