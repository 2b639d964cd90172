#include "download/http_transfer.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "llm/error.hpp"

namespace llmhost::download {

bool is_success(long status) { return status >= 200 && status < 300; }

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

void ensure_curl_initialised() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("libcurl failed to initialise");
    }
  });
}

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct HeaderListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using HeaderList = std::unique_ptr<curl_slist, HeaderListDeleter>;

// What the callbacks share during one transfer.
struct TransferState {
  CURL* curl = nullptr;
  TransferResult result;
  // fetch_text
  size_t max_text_bytes = 0;
  bool text_too_large = false;
  // fetch_to_file
  int fd = -1;
  uint64_t resume_from = 0;
  uint64_t bytes_in_file = 0;
  bool body_decided = false;  // first body byte seen: status known, sink chosen
  bool body_to_file = false;
  bool unexpected_range = false;
  long long content_range_start = -1;
  const ProgressCallback* progress = nullptr;
};

bool starts_with_ci(const std::string& text, const std::string& prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  size_t first = 0;
  while (first < text.size() && text[first] == ' ') ++first;
  return text.substr(first);
}

// Headers of every response pass here, redirects included: a status line starts a new response.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& state = *static_cast<TransferState*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    state.result.hub_error_code.clear();
    state.content_range_start = -1;
  } else if (starts_with_ci(line, "x-error-code:")) {
    state.result.hub_error_code = trimmed(line.substr(13));
  } else if (starts_with_ci(line, "content-range:")) {
    const std::string value = trimmed(line.substr(14));  // "bytes N-M/T"
    if (value.rfind("bytes ", 0) == 0) {
      try {
        state.content_range_start = std::stoll(value.substr(6));
      } catch (const std::exception&) {
        state.content_range_start = -1;
      }
    }
  }
  return size * count;
}

size_t on_text_body(char* data, size_t size, size_t count, void* user) {
  auto& state = *static_cast<TransferState*>(user);
  const size_t bytes = size * count;
  if (state.result.body.size() + bytes > state.max_text_bytes) {
    state.text_too_large = true;
    return 0;
  }
  state.result.body.append(data, bytes);
  return bytes;
}

bool write_all(int fd, const char* data, size_t bytes) {
  while (bytes > 0) {
    const ssize_t written = ::write(fd, data, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += written;
    bytes -= static_cast<size_t>(written);
  }
  return true;
}

bool truncate_to_zero(int fd) { return ::ftruncate(fd, 0) == 0 && ::lseek(fd, 0, SEEK_SET) == 0; }

// The final response's status is known at its first body byte: 206 appends, 200 starts over,
// anything else is an error body kept in memory.
void choose_body_sink(TransferState& state) {
  state.body_decided = true;
  long status = 0;
  curl_easy_getinfo(state.curl, CURLINFO_RESPONSE_CODE, &status);
  if (status == 206) {
    state.body_to_file = true;
    if (state.content_range_start != static_cast<long long>(state.resume_from)) {
      state.unexpected_range = true;
    }
  } else if (status == 200) {
    state.body_to_file = true;
    if (state.resume_from > 0) {
      state.result.range_ignored = true;
      state.bytes_in_file = 0;
    }
  }
}

size_t on_file_body(char* data, size_t size, size_t count, void* user) {
  auto& state = *static_cast<TransferState*>(user);
  const size_t bytes = size * count;
  if (!state.body_decided) {
    choose_body_sink(state);
    if (state.unexpected_range) return 0;
    if (state.result.range_ignored && !truncate_to_zero(state.fd)) {
      state.result.write_errno = errno;
      return 0;
    }
  }
  if (!state.body_to_file) {
    if (state.result.body.size() < kMaxErrorBody) state.result.body.append(data, bytes);
    return bytes;
  }
  if (!write_all(state.fd, data, bytes)) {
    state.result.write_errno = errno;
    return 0;
  }
  state.bytes_in_file += bytes;
  if (state.progress != nullptr && *state.progress) {
    (*state.progress)(state.bytes_in_file, state.result.range_ignored);
  }
  return bytes;
}

std::string host_of(const char* url) {
  std::string host;
  CURLU* parsed = curl_url();
  if (parsed == nullptr) return host;
  char* part = nullptr;
  if (curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(parsed, CURLUPART_HOST, &part, 0) == CURLUE_OK) {
    host = part;
    curl_free(part);
  }
  curl_url_cleanup(parsed);
  return host;
}

// Sets what every request shares and runs it; the state's callbacks are already chosen.
CURLcode perform(const HttpRequest& request, TransferState& state, CURL* curl,
                 curl_write_callback on_body, char (&error_buffer)[CURL_ERROR_SIZE]) {
  HeaderList headers;
  if (!request.bearer_token.empty()) {
    headers.reset(
        curl_slist_append(nullptr, ("Authorization: Bearer " + request.bearer_token).c_str()));
  }
  const std::string range = std::to_string(request.resume_from) + "-";
  const std::string user_agent = std::string("llmhost/") + LLMHOST_VERSION + " " + curl_version();

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: the string forms; the long forms are deprecated
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(curl, CURLOPT_UNRESTRICTED_AUTH, 0L);  // the token stays on the first host
  curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  if (request.resume_from > 0) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled connection (under 1 byte/s for a minute) counts as a network failure and is retried.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
  error_buffer[0] = '\0';
  const CURLcode code = curl_easy_perform(curl);

  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &state.result.status);
  char* effective_url = nullptr;
  if (curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective_url) == CURLE_OK &&
      effective_url != nullptr) {
    state.result.final_host = host_of(effective_url);
  }
  if (code != CURLE_OK) {
    state.result.outcome = TransferOutcome::kNetworkError;
    state.result.network_error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
  } else {
    state.result.outcome = TransferOutcome::kComplete;
  }
  return code;
}

CurlHandle new_handle() {
  ensure_curl_initialised();
  CurlHandle curl(curl_easy_init());
  if (!curl) throw std::runtime_error("libcurl cannot create a handle");
  return curl;
}

}  // namespace

TransferResult fetch_text(const HttpRequest& request, size_t max_bytes) {
  CurlHandle curl = new_handle();
  TransferState state;
  state.curl = curl.get();
  state.max_text_bytes = max_bytes;
  char error_buffer[CURL_ERROR_SIZE];
  curl_easy_setopt(curl.get(), CURLOPT_ACCEPT_ENCODING, "");  // listings compress well
  perform(request, state, curl.get(), on_text_body, error_buffer);
  if (state.text_too_large) {
    throw llm::UserError(request.url + ": response larger than " + std::to_string(max_bytes) +
                         " bytes; is HF_ENDPOINT a Hugging Face hub?");
  }
  return state.result;
}

TransferResult fetch_to_file(const HttpRequest& request, const std::filesystem::path& partial_path,
                             const ProgressCallback& progress) {
  CurlHandle curl = new_handle();
  TransferState state;
  state.curl = curl.get();
  state.resume_from = request.resume_from;
  state.bytes_in_file = request.resume_from;
  state.progress = &progress;

  const int fd = ::open(partial_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.result.outcome = TransferOutcome::kWriteError;
    state.result.write_errno = errno;
    return state.result;
  }
  state.fd = fd;
  // Append after exactly the bytes the Range asks for, whatever else the file holds.
  struct stat info {};
  const bool regular = ::fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  if (regular && (::ftruncate(fd, static_cast<off_t>(request.resume_from)) != 0 ||
                  ::lseek(fd, static_cast<off_t>(request.resume_from), SEEK_SET) < 0)) {
    state.result.outcome = TransferOutcome::kWriteError;
    state.result.write_errno = errno;
    ::close(fd);
    return state.result;
  }

  char error_buffer[CURL_ERROR_SIZE];
  perform(request, state, curl.get(), on_file_body, error_buffer);

  // An empty 200 body never reaches the write callback: still a fresh start.
  if (state.result.outcome == TransferOutcome::kComplete && !state.body_decided &&
      state.result.status == 200 && request.resume_from > 0) {
    state.result.range_ignored = true;
    if (!truncate_to_zero(fd)) state.result.write_errno = errno;
  }
  if (state.result.write_errno == 0 && state.body_to_file && ::fsync(fd) != 0) {
    state.result.write_errno = errno;
  }
  if (::close(fd) != 0 && state.result.write_errno == 0 && state.body_to_file) {
    state.result.write_errno = errno;
  }
  if (state.result.write_errno != 0) {
    state.result.outcome = TransferOutcome::kWriteError;
  } else if (state.unexpected_range) {
    // Start over next time rather than splice bytes from the wrong offset.
    std::error_code ignored;
    std::filesystem::resize_file(partial_path, 0, ignored);
    state.result.outcome = TransferOutcome::kNetworkError;
    state.result.network_error = "the server answered a different byte range than requested";
  }
  return state.result;
}

}  // namespace llmhost::download
