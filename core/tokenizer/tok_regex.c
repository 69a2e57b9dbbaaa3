/* Regexes of tokenizer.json on PCRE2.
 *
 * HF compiles patterns with Oniguruma (Ruby syntax). PCRE2 with UTF + UCP
 * agrees on the constructs these files use (\p{L}, \p{N}, \s, look-around,
 * (?i:...), possessive quantifiers). The differences are translated or
 * rejected here:
 *   ^ $        Ruby anchors are always per line        -> PCRE2_MULTILINE
 *   \h \H      Ruby hex digit (PCRE2: horizontal space) -> [0-9a-fA-F]
 *   \uHHHH     Ruby code point escape                  -> \x{HHHH}
 *   [a[b]] [a&&b]  Ruby nested classes / intersection  -> load error */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

static int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Writes the PCRE2 form of an Oniguruma pattern into out. */
static int translate_onig(const char *p, size_t len, struct tok_buf *out, const char *what, struct dsr_err *err) {
    int in_class = 0;     /* inside [...] */
    size_t class_at = 0;  /* index just after the opening '[' or '[^' */
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < len) {
            char e = p[i + 1];
            if (e == 'h' || e == 'H') {
                if (in_class && e == 'H')
                    return dsr_errf(err, "%s: regex \\H inside a character class is not supported", what);
                const char *rep = e == 'h' ? (in_class ? "0-9a-fA-F" : "[0-9a-fA-F]") : "[^0-9a-fA-F]";
                if (tok_buf_append(out, rep, strlen(rep), err)) return -1;
                i++;
                continue;
            }
            if (e == 'u' && i + 5 < len && is_hex(p[i + 2]) && is_hex(p[i + 3]) && is_hex(p[i + 4]) &&
                is_hex(p[i + 5])) {
                char rep[16];
                int n = snprintf(rep, sizeof rep, "\\x{%.4s}", p + i + 2);
                if (tok_buf_append(out, rep, (size_t)n, err)) return -1;
                i += 5;
                continue;
            }
            if (tok_buf_append(out, p + i, 2, err)) return -1;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            class_at = i + 1;
            if (class_at < len && p[class_at] == '^') class_at++;
        } else if (in_class) {
            if (c == ']' && i > class_at) {
                in_class = 0;
            } else if (c == '[') {
                if (i + 1 < len && p[i + 1] == ':') { /* POSIX [:name:] */
                    const char *end = strstr(p + i + 2, ":]");
                    if (!end || (size_t)(end - p) >= len)
                        return dsr_errf(err, "%s: regex has an unterminated POSIX class", what);
                    size_t n = (size_t)(end - (p + i)) + 2;
                    if (tok_buf_append(out, p + i, n, err)) return -1;
                    i += n - 1;
                    continue;
                }
                return dsr_errf(err, "%s: regex uses a nested character class (Oniguruma union), not supported", what);
            } else if (c == '&' && i + 1 < len && p[i + 1] == '&') {
                return dsr_errf(err, "%s: regex uses character class intersection (&&), not supported", what);
            }
        }
        if (tok_buf_append(out, &c, 1, err)) return -1;
    }
    return 0;
}

int tok_regex_compile(struct tok_regex *re, const char *pattern, size_t len, int literal, const char *what,
                      struct dsr_err *err) {
    re->code = NULL;
    if (!utf8_valid(pattern, len, NULL)) return dsr_errf(err, "%s: pattern is not valid UTF-8", what);
    struct tok_buf src = {0};
    uint32_t opts = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    if (literal) {
        opts |= PCRE2_LITERAL; /* PCRE2 refuses UCP with LITERAL; it is irrelevant there */
        if (tok_buf_append(&src, pattern, len, err)) return -1;
    } else {
        opts |= PCRE2_UCP | PCRE2_MULTILINE;
        if (tok_buf_reserve(&src, len, err) || translate_onig(pattern, len, &src, what, err)) {
            tok_buf_free(&src);
            return -1;
        }
    }
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        tok_buf_free(&src);
        return dsr_errf(err, "%s: out of memory compiling regex", what);
    }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int ecode = 0;
    PCRE2_SIZE eoff = 0;
    re->code = pcre2_compile((PCRE2_SPTR)(src.p ? src.p : ""), src.len, opts, &ecode, &eoff, cc);
    pcre2_compile_context_free(cc);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        int r = dsr_errf(err, "%s: regex \"%.80s\" does not compile at offset %zu: %s", what, src.p ? src.p : "",
                         (size_t)eoff, (const char *)msg);
        tok_buf_free(&src);
        return r;
    }
    tok_buf_free(&src);
    /* JIT makes the split regexes several times faster; the interpreter is
     * an exact fallback where JIT is unavailable. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    return 0;
}

void tok_regex_free(struct tok_regex *re) {
    if (re->code) pcre2_code_free(re->code);
    re->code = NULL;
}

int tok_match_ctx_init(struct tok_match_ctx *c, struct dsr_err *err) {
    memset(c, 0, sizeof *c);
    c->md = pcre2_match_data_create(1, NULL); /* only the whole match is used */
    c->mc = pcre2_match_context_create(NULL);
    c->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!c->md || !c->mc || !c->js) {
        tok_match_ctx_free(c);
        return dsr_errf(err, "tokenizer: out of memory (regex match state)");
    }
    pcre2_jit_stack_assign(c->mc, NULL, c->js);
    return 0;
}

void tok_match_ctx_free(struct tok_match_ctx *c) {
    if (c->md) pcre2_match_data_free(c->md);
    if (c->mc) pcre2_match_context_free(c->mc);
    if (c->js) pcre2_jit_stack_free(c->js);
    memset(c, 0, sizeof *c);
}

static int segs_push(struct tok_segs *s, size_t a, size_t b, int is_match, struct dsr_err *err) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        size_t *st = realloc(s->start, cap * sizeof *st);
        if (st) s->start = st;
        size_t *en = realloc(s->end, cap * sizeof *en);
        if (en) s->end = en;
        unsigned char *im = realloc(s->is_match, cap);
        if (im) s->is_match = im;
        if (!st || !en || !im) return dsr_errf(err, "tokenizer: out of memory (segments)");
        s->cap = cap;
    }
    s->start[s->n] = a;
    s->end[s->n] = b;
    s->is_match[s->n] = (unsigned char)is_match;
    s->n++;
    return 0;
}

int tok_regex_segments(const struct tok_regex *re, const char *s, size_t len, struct tok_match_ctx *mc,
                       struct tok_segs *out, struct dsr_err *err) {
    out->n = 0;
    if (len == 0) return segs_push(out, 0, 0, 0, err);
    size_t prev = 0, at = 0;
    int have_last = 0;
    size_t last_end = 0;
    while (at <= len) {
        int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, at, PCRE2_NO_UTF_CHECK, mc->md, mc->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return dsr_errf(err, "tokenizer: regex match failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(mc->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && last_end == me) {
            /* Empty match right after the previous match: step one char. */
            if (at >= len) break;
            int step = utf8_seq_len((unsigned char)s[at]);
            at += step > 0 ? (size_t)step : 1;
            continue;
        }
        if (prev != ms && segs_push(out, prev, ms, 0, err)) return -1;
        if (segs_push(out, ms, me, 1, err)) return -1;
        prev = me;
        at = me;
        have_last = 1;
        last_end = me;
    }
    if (prev != len && segs_push(out, prev, len, 0, err)) return -1;
    return 0;
}
