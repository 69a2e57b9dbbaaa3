/* Added-token matching, following HF's AddedVocabulary::find_matches:
 * leftmost-longest, non-overlapping matches of the token strings; a
 * single_word token only matches with no word character (\w) on either side;
 * lstrip/rstrip extend the match over adjacent whitespace (\s). Matching is
 * bucketed by first byte, longest pattern first, so each position costs a
 * few comparisons. */
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

struct sort_ctx_item {
    int32_t idx;
    unsigned char first;
    size_t len;
};

static int cmp_items(const void *pa, const void *pb) {
    const struct sort_ctx_item *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

int added_matcher_build(struct tok_added_matcher *m, const struct tok_added *toks, int n, int normalized_group,
                        struct dsr_err *err) {
    memset(m, 0, sizeof *m);
    struct sort_ctx_item *items = malloc((size_t)(n > 0 ? n : 1) * sizeof *items);
    m->order = malloc((size_t)(n > 0 ? n : 1) * sizeof *m->order);
    if (!items || !m->order) {
        free(items);
        added_matcher_free(m);
        return dsr_errf(err, "tokenizer: out of memory (added tokens)");
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if ((toks[i].normalized != 0) != (normalized_group != 0) || toks[i].pattern_len == 0) continue;
        items[k].idx = i;
        items[k].first = (unsigned char)toks[i].pattern[0];
        items[k].len = toks[i].pattern_len;
        k++;
    }
    qsort(items, (size_t)k, sizeof *items, cmp_items);
    int at = 0;
    for (int c = 0; c <= 256; c++) {
        m->first[c] = at;
        while (c < 256 && at < k && items[at].first == c) {
            m->order[at] = items[at].idx;
            at++;
        }
    }
    free(items);
    return 0;
}

void added_matcher_free(struct tok_added_matcher *m) {
    free(m->order);
    m->order = NULL;
}

/* Rust regex \w (Unicode): Alphabetic, marks, decimal numbers, connector
 * punctuation, join controls. */
static int is_word_char(uint32_t cp) {
    UChar32 c = (UChar32)cp;
    return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL) ||
           (U_GET_GC_MASK(c) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

static int is_space(uint32_t cp) { return u_hasBinaryProperty((UChar32)cp, UCHAR_WHITE_SPACE) != 0; }

static int seg_push(struct tok_segs *sg, int32_t **tok, size_t *tok_cap, size_t a, size_t b, int32_t t,
                    struct dsr_err *err) {
    if (sg->n == sg->cap || sg->n == *tok_cap) {
        size_t cap = (sg->cap > *tok_cap ? sg->cap : *tok_cap) * 2 + 16;
        size_t *st = realloc(sg->start, cap * sizeof *st);
        if (st) sg->start = st;
        size_t *en = realloc(sg->end, cap * sizeof *en);
        if (en) sg->end = en;
        unsigned char *im = realloc(sg->is_match, cap);
        if (im) sg->is_match = im;
        int32_t *tk = realloc(*tok, cap * sizeof *tk);
        if (tk) *tok = tk;
        if (!st || !en || !im || !tk) return dsr_errf(err, "tokenizer: out of memory (added-token splits)");
        sg->cap = cap;
        *tok_cap = cap;
    }
    sg->start[sg->n] = a;
    sg->end[sg->n] = b;
    sg->is_match[sg->n] = t >= 0;
    (*tok)[sg->n] = t;
    sg->n++;
    return 0;
}

int added_split(const struct tok_added_matcher *m, const struct tok_added *toks, const char *s, size_t len,
                struct tok_segs *sg, int32_t **seg_tok, size_t *seg_tok_cap, struct dsr_err *err) {
    sg->n = 0;
    size_t start_offset = 0, i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        int32_t best = -1;
        for (int32_t k = m->first[c]; k < m->first[c + 1]; k++) {
            const struct tok_added *t = &toks[m->order[k]];
            if (t->pattern_len <= len - i && memcmp(s + i, t->pattern, t->pattern_len) == 0) {
                best = m->order[k];
                break; /* bucket is sorted longest first */
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        const struct tok_added *t = &toks[best];
        size_t start = i, stop = i + t->pattern_len;
        i = stop; /* a rejected match still consumes its span, like aho-corasick */
        if (t->single_word) {
            int word_before = start > 0 && is_word_char(utf8_last(s, start));
            int cl;
            int word_after = stop < len && is_word_char(utf8_decode(s + stop, len - stop, &cl));
            if (word_before || word_after) continue;
        }
        if (t->lstrip) {
            size_t ns = start;
            while (ns > 0 && is_space(utf8_last(s, ns))) {
                ns--;
                while (ns > 0 && ((unsigned char)s[ns] & 0xC0) == 0x80) ns--;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (t->rstrip) {
            while (stop < len) {
                int cl;
                uint32_t cp = utf8_decode(s + stop, len - stop, &cl);
                if (!is_space(cp)) break;
                stop += (size_t)cl;
            }
            i = stop; /* keeps splits non-overlapping */
        }
        if (start_offset < start && seg_push(sg, seg_tok, seg_tok_cap, start_offset, start, -1, err)) return -1;
        if (seg_push(sg, seg_tok, seg_tok_cap, start, stop, best, err)) return -1;
        start_offset = stop;
    }
    if (len == 0 || start_offset != len)
        return seg_push(sg, seg_tok, seg_tok_cap, start_offset, len, -1, err);
    return 0;
}
