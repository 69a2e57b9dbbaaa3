/* Internal data structures of the tokenizer, shared by its implementation
 * files (tokenizer_load.c, tokenizer.c, tok_hash.c, tok_regex.c,
 * normalize.c, pretokenize.c, bpe.c, added_tokens.c). Not a public API:
 * callers use tokenizer.h. */
#ifndef DSR_TOK_INTERNAL_H
#define DSR_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

/* ---- growable byte buffer ---------------------------------------------- */
struct tok_buf {
    char *p;
    size_t len, cap;
};
int  tok_buf_reserve(struct tok_buf *b, size_t extra, struct dsr_err *err);
int  tok_buf_append(struct tok_buf *b, const char *s, size_t n, struct dsr_err *err);
void tok_buf_free(struct tok_buf *b);

/* ---- hash maps (tok_hash.c) --------------------------------------------- */
/* String -> int32 map owning copies of its keys (NUL-terminated, in one
 * arena so lookups touch little memory). Keys are byte strings. */
struct tok_strent {
    size_t off;   /* key offset in arena */
    uint32_t len; /* key length in bytes */
    int32_t val;
};
struct tok_strmap {
    char *arena;
    size_t arena_len, arena_cap;
    struct tok_strent *ents;
    size_t n, ents_cap;
    int32_t *slots; /* entry index or -1; power-of-two size */
    size_t nslots;
};
/* Inserts or overwrites (the later value wins, as with a Rust HashMap). */
int  strmap_put(struct tok_strmap *m, const char *key, size_t len, int32_t val, struct dsr_err *err);
int  strmap_get(const struct tok_strmap *m, const char *key, size_t len, int32_t *val); /* 1 if found */
void strmap_free(struct tok_strmap *m);

/* (left id, right id) -> (merge rank, merged id). */
struct tok_pairmap {
    uint64_t *keys; /* (left << 32) | right; UINT64_MAX = empty */
    uint32_t *rank;
    int32_t *merged;
    size_t cap, n;
};
int  pairmap_init(struct tok_pairmap *m, size_t expected, struct dsr_err *err);
void pairmap_put(struct tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t merged);
int  pairmap_get(const struct tok_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged);
void pairmap_free(struct tok_pairmap *m);

/* ---- regex (tok_regex.c) ------------------------------------------------ */
struct tok_regex {
    pcre2_code *code; /* NULL = not compiled */
};
/* Compiles an HF pattern: {"Regex": onig} (translated to PCRE2) or a literal
 * {"String": s} (literal != 0). `what` names the component for errors. */
int  tok_regex_compile(struct tok_regex *re, const char *pattern, size_t len, int literal, const char *what,
                       struct dsr_err *err);
void tok_regex_free(struct tok_regex *re);

/* Per-call matching state (PCRE2 match data and a JIT stack). */
struct tok_match_ctx {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
};
int  tok_match_ctx_init(struct tok_match_ctx *c, struct dsr_err *err);
void tok_match_ctx_free(struct tok_match_ctx *c);

/* A covering segmentation of a string into matches and gaps, in order. */
struct tok_segs {
    size_t *start, *end;
    unsigned char *is_match;
    size_t n, cap;
};
void tok_segs_free(struct tok_segs *s);
/* HF's Pattern::find_matches for a regex: every match (empty matches right
 * after a previous match skipped, like the onig/regex find_iter) plus the
 * gaps between them. Empty input gives one empty gap. */
int tok_regex_segments(const struct tok_regex *re, const char *s, size_t len, struct tok_match_ctx *mc,
                       struct tok_segs *out, struct dsr_err *err);

/* ---- pieces: a list of strings in one arena ----------------------------- */
struct tok_piece {
    size_t off, len;
};
struct tok_pieces {
    struct tok_buf text;
    struct tok_piece *v;
    size_t n, cap;
};
int  pieces_push(struct tok_pieces *p, const char *s, size_t len, struct dsr_err *err);
void pieces_clear(struct tok_pieces *p);
void pieces_free(struct tok_pieces *p);

/* ---- normalizer (normalize.c) ------------------------------------------- */
enum tok_norm_kind { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE, NORM_REPLACE, NORM_PREPEND, NORM_STRIP };
struct tok_norm_step {
    enum tok_norm_kind kind;
    struct tok_regex re; /* Replace */
    char *content;       /* Replace, Prepend */
    size_t content_len;
    int strip_left, strip_right; /* Strip */
};
struct tok_normalizer {
    struct tok_norm_step *steps; /* Sequences flattened; n == 0: none */
    int n;
};
int  normalizer_parse(json_t *j, struct tok_normalizer *out, struct dsr_err *err);
/* Normalizes s into out (cleared first). */
int  normalizer_apply(const struct tok_normalizer *nz, const char *s, size_t len, struct tok_buf *out,
                      struct tok_match_ctx *mc, struct dsr_err *err);
void normalizer_free(struct tok_normalizer *nz);

/* ---- pre-tokenizer (pretokenize.c) -------------------------------------- */
enum tok_split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };
enum tok_pretok_kind { PRETOK_SPLIT, PRETOK_BYTELEVEL };
struct tok_pretok_step {
    enum tok_pretok_kind kind;
    struct tok_regex re; /* Split pattern, or the GPT-2 regex of ByteLevel */
    enum tok_split_behavior behavior;
    int invert;
    int add_prefix_space, use_regex; /* ByteLevel */
};
struct tok_pretokenizer {
    struct tok_pretok_step *steps; /* Sequences flattened; n == 0: none */
    int n;
};
int pretokenizer_parse(json_t *j, struct tok_pretokenizer *out, struct dsr_err *err);
/* Runs every step over the pieces in *a (b is scratch); the result is in *a. */
int  pretokenizer_apply(const struct tok_pretokenizer *pt, struct tok_pieces *a, struct tok_pieces *b,
                        struct tok_match_ctx *mc, struct tok_segs *segs, struct dsr_err *err);
void pretokenizer_free(struct tok_pretokenizer *pt);

/* GPT-2 byte-level alphabet: byte b <-> code point byte_to_cp[b]. */
void     bytelevel_tables(uint32_t byte_to_cp[256]);

/* ---- BPE model (bpe.c) -------------------------------------------------- */
#define BPE_SMALL_CP 0x800 /* code points with a direct char -> id table */
struct tok_bpe {
    struct tok_strmap vocab;
    struct tok_pairmap merges;
    int32_t unk_id; /* -1: no unk token */
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t small_char_id[BPE_SMALL_CP]; /* single-char tokens, -1 absent */
    int32_t byte_token[256];             /* "<0xAB>" tokens for byte_fallback */
};
struct tok_bpe_sym {
    int32_t id, prev, next, len; /* len 0: merged away */
};
struct tok_bpe_merge {
    uint32_t rank;
    int32_t pos, merged;
};
struct tok_bpe_scratch {
    struct tok_bpe_sym *sym;
    size_t sym_cap;
    struct tok_bpe_merge *heap;
    size_t heap_cap;
};
int  bpe_parse(json_t *model, struct tok_bpe *out, struct dsr_err *err);
void bpe_index_chars(struct tok_bpe *b); /* fills small_char_id / byte_token */
int  bpe_encode_word(const struct tok_bpe *b, const char *w, size_t len, struct tok_bpe_scratch *s,
                     struct tok_ids *out, struct dsr_err *err);
void bpe_scratch_free(struct tok_bpe_scratch *s);
void bpe_free(struct tok_bpe *b);

/* ---- added tokens (added_tokens.c) -------------------------------------- */
struct tok_added {
    char *content;
    size_t len;
    int32_t id;
    int special, lstrip, rstrip, single_word, normalized;
    char *pattern; /* what is matched: content, normalized when `normalized` */
    size_t pattern_len;
};
/* Leftmost-longest matcher over one group of added tokens (the raw group or
 * the normalized group), indexed by first byte. */
struct tok_added_matcher {
    int32_t *order;      /* indices into the token array, by first byte then length desc */
    int32_t first[257];  /* order[first[c] .. first[c+1]) start with byte c */
};
int  added_matcher_build(struct tok_added_matcher *m, const struct tok_added *toks, int n, int normalized_group,
                         struct dsr_err *err);
void added_matcher_free(struct tok_added_matcher *m);
/* Splits s into segments: seg_tok[i] = added-token index or -1 for text,
 * following HF's AddedVocabulary::find_matches (single_word, lstrip, rstrip). */
int added_split(const struct tok_added_matcher *m, const struct tok_added *toks, const char *s, size_t len,
                struct tok_segs *segs, int32_t **seg_tok, size_t *seg_tok_cap, struct dsr_err *err);

/* ---- the tokenizer ------------------------------------------------------ */
enum tok_decoder { DECODER_NONE, DECODER_BYTELEVEL };
struct tokenizer {
    struct tok_bpe bpe;
    struct tok_added *added;
    int n_added;
    struct tok_strmap added_map; /* content -> index into `added` */
    struct tok_added_matcher match_raw, match_norm;
    struct tok_normalizer normalizer;
    struct tok_pretokenizer pretok;
    int32_t *post_prefix, *post_suffix; /* ids around the sequence when add_special */
    int n_post_prefix, n_post_suffix;
    enum tok_decoder decoder;
    /* id -> token string (pointing into the maps' arenas) and flags */
    int32_t n_ids;
    const char **id_str;
    uint32_t *id_len;
    unsigned char *id_special;
};

int tokenizer_finish(struct tokenizer *t, struct dsr_err *err); /* builds id tables and matchers */

#endif
