/* Encoding and decoding: the HF pipeline
 *   added tokens (raw) -> normalizer -> added tokens (normalized)
 *   -> pre-tokenizer -> BPE per piece [-> post-processor ids]
 * and ids -> tokens -> decoder -> UTF-8 text. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

/* Per-call scratch: keeps the tokenizer itself read-only (thread-safe). */
struct enc_ctx {
    struct tok_match_ctx mc;
    struct tok_segs segs, raw, norm;
    int32_t *raw_tok, *norm_tok;
    size_t raw_tok_cap, norm_tok_cap;
    struct tok_pieces a, b;
    struct tok_buf nbuf;
    struct tok_bpe_scratch bs;
    /* word -> ids cache for this call: real text repeats words, and a hit
     * skips the merge loop entirely. Bounded in entries and word length. */
    struct tok_strmap cache;
    struct tok_ids cache_ids;
    struct tok_piece *cache_span; /* per entry: offset and count in cache_ids */
    size_t cache_n;
};

#define WORD_CACHE_MAX_ENTRIES 65536
#define WORD_CACHE_MAX_WORD 128

static void enc_ctx_free(struct enc_ctx *c) {
    tok_match_ctx_free(&c->mc);
    tok_segs_free(&c->segs);
    tok_segs_free(&c->raw);
    tok_segs_free(&c->norm);
    free(c->raw_tok);
    free(c->norm_tok);
    pieces_free(&c->a);
    pieces_free(&c->b);
    tok_buf_free(&c->nbuf);
    bpe_scratch_free(&c->bs);
    strmap_free(&c->cache);
    tok_ids_free(&c->cache_ids);
    free(c->cache_span);
}

static int encode_word(const struct tokenizer *t, const char *w, size_t len, struct enc_ctx *c, struct tok_ids *out,
                       struct dsr_err *err) {
    int32_t k;
    if (len > WORD_CACHE_MAX_WORD) return bpe_encode_word(&t->bpe, w, len, &c->bs, out, err);
    if (strmap_get(&c->cache, w, len, &k)) {
        for (size_t i = 0; i < c->cache_span[k].len; i++)
            if (tok_ids_push(out, c->cache_ids.ids[c->cache_span[k].off + i], err)) return -1;
        return 0;
    }
    size_t before = out->n;
    if (bpe_encode_word(&t->bpe, w, len, &c->bs, out, err)) return -1;
    if (c->cache_n >= WORD_CACHE_MAX_ENTRIES) return 0;
    if (!c->cache_span) {
        c->cache_span = malloc(WORD_CACHE_MAX_ENTRIES * sizeof *c->cache_span);
        if (!c->cache_span) return 0; /* the cache is an optimisation only */
    }
    size_t off = c->cache_ids.n;
    for (size_t i = before; i < out->n; i++)
        if (tok_ids_push(&c->cache_ids, out->ids[i], err)) return -1;
    c->cache_span[c->cache_n].off = off;
    c->cache_span[c->cache_n].len = out->n - before;
    if (strmap_put(&c->cache, w, len, (int32_t)c->cache_n, err)) return -1;
    c->cache_n++;
    return 0;
}

/* Pre-tokenizes and BPE-encodes one stretch of normalized text. */
static int encode_text(const struct tokenizer *t, const char *s, size_t len, struct enc_ctx *c, struct tok_ids *out,
                       struct dsr_err *err) {
    if (len == 0) return 0;
    pieces_clear(&c->a);
    if (pieces_push(&c->a, s, len, err)) return -1;
    if (pretokenizer_apply(&t->pretok, &c->a, &c->b, &c->mc, &c->segs, err)) return -1;
    for (size_t i = 0; i < c->a.n; i++)
        if (encode_word(t, c->a.text.p + c->a.v[i].off, c->a.v[i].len, c, out, err)) return -1;
    return 0;
}

/* One stretch of raw text between raw-matched added tokens. */
static int encode_segment(const struct tokenizer *t, const char *s, size_t len, struct enc_ctx *c,
                          struct tok_ids *out, struct dsr_err *err) {
    if (len == 0) return 0; /* HF drops empty splits before normalizing */
    const char *ns = s;
    size_t nlen = len;
    if (t->normalizer.n > 0) {
        if (normalizer_apply(&t->normalizer, s, len, &c->nbuf, &c->mc, err)) return -1;
        ns = c->nbuf.p;
        nlen = c->nbuf.len;
    }
    if (t->match_norm.first[256] == 0) return encode_text(t, ns, nlen, c, out, err);
    if (added_split(&t->match_norm, t->added, ns, nlen, &c->norm, &c->norm_tok, &c->norm_tok_cap, err)) return -1;
    for (size_t i = 0; i < c->norm.n; i++) {
        int32_t k = c->norm_tok[i];
        if (k >= 0) {
            if (tok_ids_push(out, t->added[k].id, err)) return -1;
        } else if (encode_text(t, ns + c->norm.start[i], c->norm.end[i] - c->norm.start[i], c, out, err)) {
            return -1;
        }
    }
    return 0;
}

int tokenizer_encode(const struct tokenizer *t, const char *text, size_t len, int add_special, struct tok_ids *out,
                     struct dsr_err *err) {
    if (!t) return dsr_errf(err, TOKENIZER_NONE_MSG);
    if (len > TOKENIZER_MAX_TEXT_BYTES)
        return dsr_errf(err, "tokenize: text of %zu bytes exceeds the limit of %zu", len, TOKENIZER_MAX_TEXT_BYTES);
    size_t bad = 0;
    if (len > 0 && !text) return dsr_errf(err, "tokenize: NULL text");
    if (!utf8_valid(text, len, &bad)) return dsr_errf(err, "tokenize: text is not valid UTF-8 (byte %zu)", bad);
    struct enc_ctx c;
    memset(&c, 0, sizeof c);
    if (tok_match_ctx_init(&c.mc, err)) return -1;
    int rc = 0;
    for (int i = 0; add_special && i < t->n_post_prefix && rc == 0; i++) rc = tok_ids_push(out, t->post_prefix[i], err);
    if (rc == 0) rc = added_split(&t->match_raw, t->added, text, len, &c.raw, &c.raw_tok, &c.raw_tok_cap, err);
    for (size_t i = 0; rc == 0 && i < c.raw.n; i++) {
        int32_t k = c.raw_tok[i];
        if (k >= 0) rc = tok_ids_push(out, t->added[k].id, err);
        else rc = encode_segment(t, text + c.raw.start[i], c.raw.end[i] - c.raw.start[i], &c, out, err);
    }
    for (int i = 0; add_special && i < t->n_post_suffix && rc == 0; i++) rc = tok_ids_push(out, t->post_suffix[i], err);
    enc_ctx_free(&c);
    return rc;
}

int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                     size_t *out_len, struct dsr_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!t) return dsr_errf(err, TOKENIZER_NONE_MSG);
    if (n > TOKENIZER_MAX_TEXT_BYTES) return dsr_errf(err, "detokenize: %zu ids exceeds the limit", n);
    int cp_to_byte[0x144]; /* every byte-level code point is below U+0144 */
    uint32_t b2c[256];
    bytelevel_tables(b2c);
    for (int i = 0; i < 0x144; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[b2c[b]] = b;

    struct tok_buf raw = {0};
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->id_str[id]) {
            tok_buf_free(&raw);
            return dsr_errf(err, "detokenize: id %d at position %zu is not in the vocabulary", id, i);
        }
        if (skip_special && t->id_special[id]) continue;
        const char *s = t->id_str[id];
        size_t len = t->id_len[id];
        int rc = 0;
        if (t->decoder == DECODER_NONE) {
            if (!first) rc = tok_buf_append(&raw, " ", 1, err);
            if (rc == 0) rc = tok_buf_append(&raw, s, len, err);
        } else {
            /* ByteLevel: a token whose characters all belong to the byte
             * alphabet becomes those bytes; any other token (an added token
             * such as "<｜begin▁of▁sentence｜>") is copied as is, as in HF. */
            size_t mark = raw.len;
            rc = tok_buf_reserve(&raw, len, err);
            for (size_t k = 0; rc == 0 && k < len;) {
                int cl;
                uint32_t cp = utf8_decode(s + k, len - k, &cl);
                if (cp >= 0x144 || cp_to_byte[cp] < 0) {
                    raw.len = mark;
                    rc = tok_buf_append(&raw, s, len, err);
                    break;
                }
                raw.p[raw.len++] = (char)cp_to_byte[cp];
                k += (size_t)cl;
            }
        }
        if (rc) {
            tok_buf_free(&raw);
            return -1;
        }
        first = 0;
    }
    char *text = malloc(raw.len * 3 + 1);
    if (!text) {
        tok_buf_free(&raw);
        return dsr_errf(err, "detokenize: out of memory");
    }
    size_t m = utf8_lossy((const unsigned char *)(raw.p ? raw.p : ""), raw.len, text);
    text[m] = '\0';
    tok_buf_free(&raw);
    *out = text;
    if (out_len) *out_len = m;
    return 0;
}

int32_t tokenizer_token_to_id(const struct tokenizer *t, const char *token) {
    int32_t v;
    if (!t) return -1;
    size_t len = strlen(token);
    if (strmap_get(&t->added_map, token, len, &v)) return t->added[v].id;
    if (strmap_get(&t->bpe.vocab, token, len, &v)) return v;
    return -1;
}

const char *tokenizer_id_to_token(const struct tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->n_ids) return NULL;
    return t->id_str[id];
}

int tokenizer_is_special(const struct tokenizer *t, int32_t id) {
    return t && id >= 0 && id < t->n_ids && t->id_special[id];
}

int32_t tokenizer_vocab_size(const struct tokenizer *t) { return t ? t->n_ids : 0; }

size_t tokenizer_special_suffix(const struct tokenizer *t, const char *text, size_t len) {
    size_t best = 0;
    for (int i = 0; i < t->n_added; i++) {
        const struct tok_added *a = &t->added[i];
        size_t n = a->len;
        if (a->special && n > best && n <= len && memcmp(text + len - n, a->content, n) == 0) best = n;
    }
    return best;
}
