#include "sentencepiece_runtime.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace llm::tokenizer_detail {
namespace {

constexpr const char* kModuleName = "libllmsdk_sentencepiece.so";

// The module sits next to libllmsdk in the build tree and in an installation alike.
std::filesystem::path module_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&SentencePieceRuntime::get), &info) != 0 &&
      info.dli_fname != nullptr) {
    return std::filesystem::path(info.dli_fname).parent_path() / kModuleName;
  }
  return kModuleName;  // let the loader search its usual paths
}

template <typename Function>
void resolve(void* handle, const char* name, Function& function) {
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) {
    throw std::runtime_error(std::string(kModuleName) + " lacks " + name +
                             " (rebuild the SDK: the module and libllmsdk must match)");
  }
  function = reinterpret_cast<Function>(symbol);
}

SentencePieceRuntime load_runtime() {
  const std::filesystem::path path = module_path();
  // Never dlclosed: tokenizers may live until static destruction.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) {
    const char* reason = dlerror();
    throw std::runtime_error("cannot load the sentencepiece module " + path.string() + ": " +
                             (reason != nullptr ? reason : "unknown error"));
  }
  SentencePieceRuntime runtime{};
  resolve(handle, "llm_spm_load", runtime.load);
  resolve(handle, "llm_spm_free", runtime.free);
  resolve(handle, "llm_spm_piece_count", runtime.piece_count);
  resolve(handle, "llm_spm_piece", runtime.piece);
  resolve(handle, "llm_spm_piece_flags", runtime.piece_flags);
  resolve(handle, "llm_spm_find_piece", runtime.find_piece);
  resolve(handle, "llm_spm_bos_id", runtime.bos_id);
  resolve(handle, "llm_spm_eos_id", runtime.eos_id);
  resolve(handle, "llm_spm_encode", runtime.encode);
  return runtime;
}

}  // namespace

const SentencePieceRuntime& SentencePieceRuntime::get() {
  static const SentencePieceRuntime runtime = load_runtime();
  return runtime;
}

}  // namespace llm::tokenizer_detail
