/* C interface of libllmsdk_sentencepiece, a small module wrapping libsentencepiece.
 *
 * Why a separate module: Debian's libsentencepiece bundles protobuf-lite 3.14 and exports its
 * symbols, while LibTorch loads libprotobuf 3.21. Linked into one process normally, each binds to
 * the other's protobuf and the process crashes at start-up. The SDK therefore dlopens this module
 * with RTLD_LOCAL | RTLD_DEEPBIND: sentencepiece then resolves protobuf inside itself and stays
 * invisible to LibTorch. Only C types cross the boundary; no exception does. */
#ifndef LLM_SENTENCEPIECE_SHIM_H
#define LLM_SENTENCEPIECE_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct llm_spm_model llm_spm_model;

enum { LLM_SPM_CONTROL = 1, LLM_SPM_UNKNOWN = 2, LLM_SPM_BYTE = 4 };

/* Receives encoded ids; `context` is the caller's. */
typedef void (*llm_spm_id_sink)(void* context, const int* ids, size_t count);

/* NULL on failure, with a message in `error` (always NUL-terminated when error_size > 0). */
llm_spm_model* llm_spm_load(const char* path, char* error, size_t error_size);
void llm_spm_free(llm_spm_model* model);

int llm_spm_piece_count(const llm_spm_model* model);
/* The piece text of an id in [0, piece_count): owned by the model, valid until llm_spm_free. */
const char* llm_spm_piece(const llm_spm_model* model, int id, size_t* length);
/* LLM_SPM_* flags of an id in [0, piece_count). */
int llm_spm_piece_flags(const llm_spm_model* model, int id);
/* The id of a piece spelled exactly so, or -1. */
int llm_spm_find_piece(const llm_spm_model* model, const char* piece, size_t length);
int llm_spm_bos_id(const llm_spm_model* model); /* -1 when the model has none */
int llm_spm_eos_id(const llm_spm_model* model);

/* Encodes UTF-8 text into `sink`; 0 on success, else -1 with a message in `error`. */
int llm_spm_encode(const llm_spm_model* model, const char* text, size_t length,
                   llm_spm_id_sink sink, void* context, char* error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
