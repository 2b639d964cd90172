#pragma once
#include "sentencepiece_shim/sentencepiece_shim.h"

namespace llm::tokenizer_detail {

// The functions of libllmsdk_sentencepiece, dlopened on first use from libllmsdk's own directory
// with RTLD_LOCAL | RTLD_DEEPBIND (sentencepiece_shim.h says why). Throws std::runtime_error
// when the module is missing: that is a broken installation, not bad user input.
struct SentencePieceRuntime {
  decltype(&llm_spm_load) load;
  decltype(&llm_spm_free) free;
  decltype(&llm_spm_piece_count) piece_count;
  decltype(&llm_spm_piece) piece;
  decltype(&llm_spm_piece_flags) piece_flags;
  decltype(&llm_spm_find_piece) find_piece;
  decltype(&llm_spm_bos_id) bos_id;
  decltype(&llm_spm_eos_id) eos_id;
  decltype(&llm_spm_encode) encode;

  static const SentencePieceRuntime& get();
};

}  // namespace llm::tokenizer_detail
