#pragma once
// Shared by the libFuzzer targets. Policy: bad input may only ever surface as llm::UserError;
// any other exception escaping the SDK is a finding, so it aborts (libFuzzer then saves the input).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "llm/error.hpp"

namespace llm::fuzz {

// A per-process scratch directory on tmpfs when there is one (one file write per execution).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* base = std::getenv("LLMHOST_FUZZ_TMP");
    std::filesystem::path root =
        base ? base : (std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp");
    auto path = root / ("llmhost-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// What a non-UserError exception does: abort in a fuzz target (libFuzzer keeps the input), a
// test failure in the regression replay (tests/sdk/fuzz_regression_test.cpp). One per binary.
void on_unexpected_exception(const char* what);

// Runs `body`; UserError is the expected answer to bad input, anything else is a finding.
template <typename Body>
void expect_only_user_errors(Body&& body) {
  try {
    body();
  } catch (const llm::UserError&) {
  } catch (const std::exception& e) {
    on_unexpected_exception(e.what());
  }
}

}  // namespace llm::fuzz
