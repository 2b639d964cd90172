#pragma once
// SHA-256 through OpenSSL's EVP interface, to check a download against the hub's LFS digest.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace llmhost::download {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  std::string hex_digest();  // lowercase hex; call once

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

// The SHA-256 of a whole file, read in chunks; UserError naming the file when it cannot be read.
std::string sha256_of_file(const std::filesystem::path& path);

}  // namespace llmhost::download
