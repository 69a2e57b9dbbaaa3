/* Growable buffers used by the tokenizer: bytes, piece lists, segments. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

int tok_buf_reserve(struct tok_buf *b, size_t extra, struct dsr_err *err) {
    if (extra > SIZE_MAX / 2 - b->len) return dsr_errf(err, "tokenizer: buffer size overflow");
    size_t need = b->len + extra + 1; /* +1 keeps room for a NUL */
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return dsr_errf(err, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

int tok_buf_append(struct tok_buf *b, const char *s, size_t n, struct dsr_err *err) {
    if (tok_buf_reserve(b, n, err)) return -1;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

void tok_buf_free(struct tok_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

int pieces_push(struct tok_pieces *p, const char *s, size_t len, struct dsr_err *err) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct tok_piece *v = realloc(p->v, cap * sizeof *v);
        if (!v) return dsr_errf(err, "tokenizer: out of memory (pieces)");
        p->v = v;
        p->cap = cap;
    }
    size_t off = p->text.len;
    if (tok_buf_append(&p->text, s, len, err)) return -1;
    p->v[p->n].off = off;
    p->v[p->n].len = len;
    p->n++;
    return 0;
}

void pieces_clear(struct tok_pieces *p) {
    p->n = 0;
    p->text.len = 0;
}

void pieces_free(struct tok_pieces *p) {
    tok_buf_free(&p->text);
    free(p->v);
    memset(p, 0, sizeof *p);
}

void tok_segs_free(struct tok_segs *s) {
    free(s->start);
    free(s->end);
    free(s->is_match);
    memset(s, 0, sizeof *s);
}

int tok_ids_push(struct tok_ids *v, int32_t id, struct dsr_err *err) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return dsr_errf(err, "tokenizer: out of memory (%zu ids)", cap);
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

void tok_ids_free(struct tok_ids *v) {
    free(v->ids);
    memset(v, 0, sizeof *v);
}
