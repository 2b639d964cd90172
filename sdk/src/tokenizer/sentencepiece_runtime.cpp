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

#if defined(__SANITIZE_ADDRESS__)
#define LLM_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LLM_ASAN_BUILD 1
#endif
#endif

// dlopen with RTLD_DEEPBIND. AddressSanitizer's dlopen interceptor aborts on RTLD_DEEPBIND
// (google/sanitizers#611: malloc/free called directly from a deep-bound library bypass ASan's
// allocator, so memory freed across that boundary would be misreported). Our module passes no
// heap ownership across its C interface (sentencepiece_shim.h: ids go through a callback, pieces
// stay owned by the model, errors are copied into caller buffers), so in sanitizer builds the
// SDK calls the C library's dlopen directly, found as the next definition after the ASan runtime.
void* dlopen_deepbind(const char* path) {
  constexpr int kFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#ifdef LLM_ASAN_BUILD
  using DlopenFn = void* (*)(const char*, int);
  if (auto* libc_dlopen = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"))) {
    return libc_dlopen(path, kFlags);
  }
#endif
  return dlopen(path, kFlags);
}

SentencePieceRuntime load_runtime() {
  const std::filesystem::path path = module_path();
  // Never dlclosed: tokenizers may live until static destruction.
  void* handle = dlopen_deepbind(path.c_str());
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
