/* Text <-> token ids, compatible with HF `tokenizers` (tokenizer.json).
 *
 * Supported pipeline (anything else is a load error naming the component):
 *   model          BPE (vocab; merges as "a b" strings or ["a","b"] pairs;
 *                  unk_token, fuse_unk, byte_fallback, ignore_merges)
 *   added_tokens   special and normal; lstrip/rstrip/single_word/normalized
 *   normalizer     NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip,
 *                  Sequence (Unicode work through ICU)
 *   pre_tokenizer  Split (all behaviors, invert), ByteLevel (with/without
 *                  the GPT-2 regex, add_prefix_space), Digits, Sequence
 *   post_processor TemplateProcessing (single), RobertaProcessing,
 *                  BertProcessing, ByteLevel, Sequence (used only when
 *                  add_special is set)
 *   decoder        ByteLevel, or none (tokens joined by spaces, as HF)
 * Regexes (Oniguruma syntax in HF files) run on PCRE2 with UTF + UCP.
 *
 * Ownership: a `struct tokenizer` owns all its memory and is immutable after
 * creation, so one tokenizer may be shared by concurrent threads for
 * encode/decode/lookups. Ids are int32 in [0, tokenizer_vocab_size). */
#ifndef DSR_TOKENIZER_H
#define DSR_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Limits on untrusted input, checked before any allocation they drive. */
#define TOKENIZER_MAX_FILE_BYTES ((size_t)256 << 20) /* tokenizer.json */
#define TOKENIZER_MAX_TEXT_BYTES ((size_t)64 << 20)  /* one encode call */
#define TOKENIZER_MAX_ID         ((int32_t)1 << 24)  /* largest accepted id */

struct tokenizer;

/* A growable id array owned by the caller; zero-initialise, then release
 * with tok_ids_free. Encoding appends, so several calls can build one
 * sequence (the templates do this). */
struct tok_ids {
    int32_t *ids;
    size_t n, cap;
};
int  tok_ids_push(struct tok_ids *v, int32_t id, struct dsr_err *err);
void tok_ids_free(struct tok_ids *v);

/* Loads a tokenizer.json file / an in-memory JSON document. */
int tokenizer_load(const char *path, struct tokenizer **out, struct dsr_err *err);
int tokenizer_load_json(const char *json, size_t len, struct tokenizer **out, struct dsr_err *err);

/* Built-in byte-level tokenizer (no file): id b (0..255) is the raw byte b
 * (raw byte order, not the byte-level alphabet order); specials[i] gets id
 * first_special_id + i (must be >= 256) and is a special added token matched
 * in text. No merges, no normalizer; decode is exact. */
int tokenizer_new_bytes(const char *const *specials, int n_specials, int first_special_id,
                        struct tokenizer **out, struct dsr_err *err);

void tokenizer_free(struct tokenizer *t);

/* Every function below accepts t == NULL, a model served without a
 * tokenizer: encode and decode then fail with TOKENIZER_NONE_MSG, the
 * look-ups find nothing and the vocabulary is empty. */
#define TOKENIZER_NONE_MSG "the model has no tokenizer (no tokenizer.json): give token ids, not text"

/* Encodes text[0..len) (must be valid UTF-8, else an error: HF only takes
 * str) and appends the ids to out. add_special applies the post-processor
 * (e.g. a BOS prefix); with 0 no special tokens are added, although special
 * tokens written in the text are still recognised, as in HF. */
int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int add_special,
                     struct tok_ids *out, struct dsr_err *err);

/* Decodes ids into a newly allocated NUL-terminated UTF-8 string (*out,
 * caller frees; *out_len its length without the NUL, may be NULL; the text
 * itself may hold NUL bytes, e.g. the byte-level token for 0x00, so use
 * the length). Invalid
 * byte sequences become U+FFFD as in HF. skip_special drops special added
 * tokens. An id outside the vocabulary is an error. */
int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                     char **out, size_t *out_len, struct dsr_err *err);

/* Token string -> id (added tokens first, then the model vocab); -1 if
 * absent. For special tokens such as "<begin_of_image>". */
int32_t tokenizer_token_to_id(const struct tokenizer *t, const char *token);

/* Id -> token string as stored (byte-level alphabet for BPE tokens); NULL if
 * the id has no token. The string lives as long as the tokenizer. */
const char *tokenizer_id_to_token(const struct tokenizer *t, int32_t id);

/* 1 when id is a special added token. */
int tokenizer_is_special(const struct tokenizer *t, int32_t id);

/* Length of the longest special added token's text that text[0..len) ends
 * with (0: none).  What HF's decode(skip_special_tokens=False) appends, e.g.
 * the EOS text after a generated response. */
size_t tokenizer_special_suffix(const struct tokenizer *t, const char *text, size_t len);

/* Size of the id space: largest id (model or added) + 1. */
int32_t tokenizer_vocab_size(const struct tokenizer *t);

#endif
