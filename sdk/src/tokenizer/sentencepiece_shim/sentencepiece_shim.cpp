// libllmsdk_sentencepiece: see sentencepiece_shim.h for why this is a module of its own.
#include "sentencepiece_shim.h"

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

#define LLM_SPM_EXPORT __attribute__((visibility("default")))

struct llm_spm_model {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void write_error(char* error, size_t error_size, const std::string& message) {
  if (error == nullptr || error_size == 0) return;
  const size_t length = std::min(message.size(), error_size - 1);
  std::memcpy(error, message.data(), length);
  error[length] = '\0';
}

}  // namespace

extern "C" {

LLM_SPM_EXPORT llm_spm_model* llm_spm_load(const char* path, char* error, size_t error_size) {
  try {
    auto* model = new llm_spm_model();
    const auto status = model->processor.Load(path);
    if (!status.ok()) {
      write_error(error, error_size, status.ToString());
      delete model;
      return nullptr;
    }
    return model;
  } catch (const std::exception& e) {
    write_error(error, error_size, e.what());
    return nullptr;
  }
}

LLM_SPM_EXPORT void llm_spm_free(llm_spm_model* model) { delete model; }

LLM_SPM_EXPORT int llm_spm_piece_count(const llm_spm_model* model) {
  return model->processor.GetPieceSize();
}

LLM_SPM_EXPORT const char* llm_spm_piece(const llm_spm_model* model, int id, size_t* length) {
  const std::string& piece = model->processor.IdToPiece(id);
  *length = piece.size();
  return piece.data();
}

LLM_SPM_EXPORT int llm_spm_piece_flags(const llm_spm_model* model, int id) {
  const auto& processor = model->processor;
  return (processor.IsControl(id) ? LLM_SPM_CONTROL : 0) |
         (processor.IsUnknown(id) ? LLM_SPM_UNKNOWN : 0) |
         (processor.IsByte(id) ? LLM_SPM_BYTE : 0);
}

LLM_SPM_EXPORT int llm_spm_find_piece(const llm_spm_model* model, const char* piece,
                                      size_t length) {
  const std::string wanted(piece, length);
  const int id = model->processor.PieceToId(wanted);  // unknown pieces map to unk_id
  if (id < 0 || id >= model->processor.GetPieceSize()) return -1;
  return model->processor.IdToPiece(id) == wanted ? id : -1;
}

LLM_SPM_EXPORT int llm_spm_bos_id(const llm_spm_model* model) { return model->processor.bos_id(); }

LLM_SPM_EXPORT int llm_spm_eos_id(const llm_spm_model* model) { return model->processor.eos_id(); }

LLM_SPM_EXPORT int llm_spm_encode(const llm_spm_model* model, const char* text, size_t length,
                                  llm_spm_id_sink sink, void* context, char* error,
                                  size_t error_size) {
  try {
    std::vector<int> ids;
    const auto status = model->processor.Encode(std::string_view(text, length), &ids);
    if (!status.ok()) {
      write_error(error, error_size, status.ToString());
      return -1;
    }
    sink(context, ids.data(), ids.size());
    return 0;
  } catch (const std::exception& e) {
    write_error(error, error_size, e.what());
    return -1;
  }
}

}  // extern "C"
