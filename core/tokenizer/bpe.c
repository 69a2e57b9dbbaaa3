/* BPE model: vocabulary, merges and the per-word merge loop.
 *
 * A word starts as one symbol per character (looked up in the vocabulary);
 * the adjacent pair with the lowest merge rank (ties: leftmost) is merged
 * repeatedly. Symbols form a doubly linked list over an array and candidate
 * merges sit in a binary min-heap, with stale entries skipped when popped —
 * the scheme of HF's Word::merge_all, O(n log n) per word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

static int opt_string_empty(json_t *model, const char *field) {
    json_t *v = json_object_get(model, field);
    return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
}

static int lookup(const struct tok_bpe *b, const char *s, size_t len, int32_t *id) {
    return strmap_get(&b->vocab, s, len, id);
}

/* Splits one merge entry into its two token strings. */
static int merge_parts(json_t *m, size_t i, const char **a, size_t *alen, const char **b, size_t *blen,
                       struct dsr_err *err) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t len = json_string_length(m);
        const char *sp = memchr(s, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)))
            return dsr_errf(err, "model BPE: merge %zu \"%.60s\" is not two tokens separated by one space", i, s);
        *a = s;
        *alen = (size_t)(sp - s);
        *b = sp + 1;
        *blen = len - *alen - 1;
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *alen = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *blen = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return dsr_errf(err, "model BPE: merge %zu must be \"a b\" or [\"a\", \"b\"]", i);
}

static int parse_merges(json_t *merges, struct tok_bpe *b, struct dsr_err *err) {
    size_t n = json_array_size(merges);
    if (pairmap_init(&b->merges, n, err)) return -1;
    struct tok_buf cat = {0};
    for (size_t i = 0; i < n; i++) {
        const char *sa = NULL, *sb = NULL;
        size_t la = 0, lb = 0;
        int32_t ia, ib, im;
        if (merge_parts(json_array_get(merges, i), i, &sa, &la, &sb, &lb, err)) goto fail;
        if (!lookup(b, sa, la, &ia) || !lookup(b, sb, lb, &ib)) {
            dsr_errf(err, "model BPE: merge %zu (\"%.40s\" \"%.40s\") uses a token missing from the vocab", i, sa, sb);
            goto fail;
        }
        cat.len = 0;
        if (tok_buf_append(&cat, sa, la, err) || tok_buf_append(&cat, sb, lb, err)) goto fail;
        if (!lookup(b, cat.p, cat.len, &im)) {
            dsr_errf(err, "model BPE: merge %zu result \"%.80s\" is missing from the vocab", i, cat.p);
            goto fail;
        }
        pairmap_put(&b->merges, ia, ib, (uint32_t)i, im); /* a repeated pair keeps its last rank, as HF */
    }
    tok_buf_free(&cat);
    return 0;
fail:
    tok_buf_free(&cat);
    return -1;
}

int bpe_parse(json_t *model, struct tok_bpe *b, struct dsr_err *err) {
    memset(b, 0, sizeof *b);
    b->unk_id = -1;
    if (!json_is_object(model)) return dsr_errf(err, "tokenizer.json: \"model\" must be an object");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0) return dsr_errf(err, "model \"%s\" is not supported (only BPE)", type);
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0)
        return dsr_errf(err, "model BPE: dropout is not supported (encoding must be deterministic)");
    if (!opt_string_empty(model, "continuing_subword_prefix"))
        return dsr_errf(err, "model BPE: continuing_subword_prefix is not supported");
    if (!opt_string_empty(model, "end_of_word_suffix"))
        return dsr_errf(err, "model BPE: end_of_word_suffix is not supported");
    b->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    b->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    b->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));

    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) return dsr_errf(err, "model BPE: \"vocab\" must be an object");
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= TOKENIZER_MAX_ID) {
            bpe_free(b);
            return dsr_errf(err, "model BPE: vocab entry \"%.60s\" has an invalid id", key);
        }
        /* jansson keys are NUL-terminated; tokens never contain NUL. */
        if (strmap_put(&b->vocab, key, strlen(key), (int32_t)id, err)) {
            bpe_free(b);
            return -1;
        }
    }
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        if (!lookup(b, json_string_value(unk), json_string_length(unk), &b->unk_id)) {
            bpe_free(b);
            return dsr_errf(err, "model BPE: unk_token \"%.60s\" is not in the vocab", json_string_value(unk));
        }
    } else if (unk && !json_is_null(unk)) {
        bpe_free(b);
        return dsr_errf(err, "model BPE: unk_token must be a string or null");
    }
    json_t *merges = json_object_get(model, "merges");
    if (merges && !json_is_array(merges)) {
        bpe_free(b);
        return dsr_errf(err, "model BPE: \"merges\" must be an array");
    }
    if (parse_merges(merges, b, err)) {
        bpe_free(b);
        return -1;
    }
    bpe_index_chars(b);
    return 0;
}

void bpe_index_chars(struct tok_bpe *b) {
    for (uint32_t cp = 0; cp < BPE_SMALL_CP; cp++) {
        char enc[4];
        int n = utf8_encode(cp, enc);
        int32_t id;
        b->small_char_id[cp] = lookup(b, enc, (size_t)n, &id) ? id : -1;
    }
    for (int byte = 0; byte < 256; byte++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        int32_t id;
        b->byte_token[byte] = lookup(b, name, 6, &id) ? id : -1;
    }
}

void bpe_free(struct tok_bpe *b) {
    strmap_free(&b->vocab);
    pairmap_free(&b->merges);
}

void bpe_scratch_free(struct tok_bpe_scratch *s) {
    free(s->sym);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

/* ---- per-word encoding --------------------------------------------------- */

static int merge_less(const struct tok_bpe_merge *x, const struct tok_bpe_merge *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(struct tok_bpe_merge *h, size_t *n, struct tok_bpe_merge m) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&m, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = m;
}

static struct tok_bpe_merge heap_pop(struct tok_bpe_merge *h, size_t *n) {
    struct tok_bpe_merge top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && merge_less(&h[c + 1], &h[c])) c++;
        if (!merge_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static int add_sym(struct tok_bpe_scratch *s, size_t *n, int32_t id, int32_t len) {
    struct tok_bpe_sym *y = &s->sym[*n];
    y->id = id;
    y->len = len;
    y->prev = (int32_t)*n - 1;
    y->next = (int32_t)*n + 1;
    (*n)++;
    return 0;
}

/* Pushes a merge candidate for the pair starting at symbol pos, if any. */
static void try_pair(const struct tok_bpe *b, struct tok_bpe_scratch *s, size_t *nh, int32_t pos) {
    int32_t next = s->sym[pos].next;
    uint32_t rank;
    int32_t merged;
    if (pairmap_get(&b->merges, s->sym[pos].id, s->sym[next].id, &rank, &merged))
        heap_push(s->heap, nh, (struct tok_bpe_merge){.rank = rank, .pos = pos, .merged = merged});
}

int bpe_encode_word(const struct tok_bpe *b, const char *w, size_t len, struct tok_bpe_scratch *s,
                    struct tok_ids *out, struct dsr_err *err) {
    int32_t id;
    if (len == 0) return 0;
    if (b->ignore_merges && lookup(b, w, len, &id)) return tok_ids_push(out, id, err);
    /* At most one symbol per byte (byte fallback) and one heap entry per
     * symbol plus one per merge. */
    if (len > (size_t)INT32_MAX / 4) return dsr_errf(err, "tokenizer: word of %zu bytes is too long", len);
    if (s->sym_cap < len) {
        free(s->sym);
        s->sym = malloc(len * sizeof *s->sym);
        s->sym_cap = s->sym ? len : 0;
    }
    if (s->heap_cap < 2 * len) {
        free(s->heap);
        s->heap = malloc(2 * len * sizeof *s->heap);
        s->heap_cap = s->heap ? 2 * len : 0;
    }
    if (!s->sym || !s->heap) return dsr_errf(err, "tokenizer: out of memory (word of %zu bytes)", len);

    size_t n = 0;
    int32_t unk_len = 0; /* pending unk symbol (0: none) */
    for (size_t i = 0; i < len;) {
        int cl;
        uint32_t cp = utf8_decode(w + i, len - i, &cl);
        int found = cp < BPE_SMALL_CP ? (id = b->small_char_id[cp]) >= 0 : lookup(b, w + i, (size_t)cl, &id);
        if (found) {
            if (unk_len) add_sym(s, &n, b->unk_id, unk_len);
            unk_len = 0;
            add_sym(s, &n, id, cl);
        } else {
            int all = b->byte_fallback;
            for (int k = 0; all && k < cl; k++) all = b->byte_token[(unsigned char)w[i + k]] >= 0;
            if (all) {
                if (unk_len) add_sym(s, &n, b->unk_id, unk_len);
                unk_len = 0;
                for (int k = 0; k < cl; k++) add_sym(s, &n, b->byte_token[(unsigned char)w[i + k]], 1);
            } else if (b->unk_id >= 0) {
                if (unk_len && !b->fuse_unk) {
                    add_sym(s, &n, b->unk_id, unk_len);
                    unk_len = 0;
                }
                unk_len += cl;
            } /* no unk token: the character is dropped, as in HF */
        }
        i += (size_t)cl;
    }
    if (unk_len) add_sym(s, &n, b->unk_id, unk_len);
    if (n == 0) return 0;
    s->sym[n - 1].next = -1;

    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(b, s, &nh, (int32_t)i);
    while (nh > 0) {
        struct tok_bpe_merge top = heap_pop(s->heap, &nh);
        struct tok_bpe_sym *left = &s->sym[top.pos];
        if (left->len == 0 || left->next < 0) continue;
        struct tok_bpe_sym *right = &s->sym[left->next];
        uint32_t rank;
        int32_t merged;
        /* Stale entry: the pair at pos changed since it was queued. */
        if (!pairmap_get(&b->merges, left->id, right->id, &rank, &merged) || merged != top.merged) continue;
        left->id = top.merged;
        left->len += right->len;
        right->len = 0;
        left->next = right->next;
        if (left->next >= 0) s->sym[left->next].prev = top.pos;
        if (left->prev >= 0) try_pair(b, s, &nh, left->prev);
        if (left->next >= 0) try_pair(b, s, &nh, top.pos);
    }
    for (int32_t i = 0; i >= 0; i = s->sym[i].next)
        if (tok_ids_push(out, s->sym[i].id, err)) return -1;
    return 0;
}
