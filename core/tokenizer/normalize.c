/* Normalizers of tokenizer.json: NFC/NFD/NFKC/NFKD, Lowercase, Replace,
 * Prepend, Strip and Sequence. Unicode tables come from ICU (the Rust
 * crates HF uses implement the same Unicode algorithms; tables may differ
 * only for code points assigned after ICU 72's Unicode 15). */
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

static int parse_step(json_t *j, struct tok_normalizer *nz, int depth, struct dsr_err *err);

static int push_step(struct tok_normalizer *nz, struct tok_norm_step *s, struct dsr_err *err) {
    struct tok_norm_step *v = realloc(nz->steps, (size_t)(nz->n + 1) * sizeof *v);
    if (!v) return dsr_errf(err, "normalizer: out of memory");
    nz->steps = v;
    nz->steps[nz->n++] = *s;
    return 0;
}

static int dup_string(json_t *j, const char *field, char **out, size_t *len, struct dsr_err *err) {
    json_t *v = json_object_get(j, field);
    if (!json_is_string(v)) return dsr_errf(err, "normalizer: field \"%s\" must be a string", field);
    *len = json_string_length(v);
    *out = malloc(*len + 1);
    if (!*out) return dsr_errf(err, "normalizer: out of memory");
    memcpy(*out, json_string_value(v), *len + 1);
    return 0;
}

/* {"String": s} or {"Regex": r} as HF serialises a pattern. */
static int parse_pattern(json_t *pat, struct tok_regex *re, const char *what, struct dsr_err *err) {
    json_t *s = json_object_get(pat, "String"), *r = json_object_get(pat, "Regex");
    if (json_is_string(s)) return tok_regex_compile(re, json_string_value(s), json_string_length(s), 1, what, err);
    if (json_is_string(r)) return tok_regex_compile(re, json_string_value(r), json_string_length(r), 0, what, err);
    return dsr_errf(err, "%s: pattern must be {\"String\": ...} or {\"Regex\": ...}", what);
}

static int parse_step(json_t *j, struct tok_normalizer *nz, int depth, struct dsr_err *err) {
    if (depth > 8) return dsr_errf(err, "normalizer: Sequence nested too deeply");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return dsr_errf(err, "normalizer: missing \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(j, "normalizers");
        if (!json_is_array(list)) return dsr_errf(err, "normalizer Sequence: \"normalizers\" must be an array");
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_step(json_array_get(list, i), nz, depth + 1, err)) return -1;
        return 0;
    }
    struct tok_norm_step s;
    memset(&s, 0, sizeof s);
    if (strcmp(type, "NFC") == 0) s.kind = NORM_NFC;
    else if (strcmp(type, "NFD") == 0) s.kind = NORM_NFD;
    else if (strcmp(type, "NFKC") == 0) s.kind = NORM_NFKC;
    else if (strcmp(type, "NFKD") == 0) s.kind = NORM_NFKD;
    else if (strcmp(type, "Lowercase") == 0) s.kind = NORM_LOWERCASE;
    else if (strcmp(type, "Prepend") == 0) {
        s.kind = NORM_PREPEND;
        if (dup_string(j, "prepend", &s.content, &s.content_len, err)) return -1;
    } else if (strcmp(type, "Replace") == 0) {
        s.kind = NORM_REPLACE;
        if (dup_string(j, "content", &s.content, &s.content_len, err)) return -1;
        if (parse_pattern(json_object_get(j, "pattern"), &s.re, "normalizer Replace", err)) {
            free(s.content);
            return -1;
        }
    } else if (strcmp(type, "Strip") == 0) {
        s.kind = NORM_STRIP;
        s.strip_left = json_is_true(json_object_get(j, "strip_left"));
        s.strip_right = json_is_true(json_object_get(j, "strip_right"));
    } else {
        return dsr_errf(err, "normalizer \"%s\" is not supported", type);
    }
    if (push_step(nz, &s, err)) {
        free(s.content);
        tok_regex_free(&s.re);
        return -1;
    }
    return 0;
}

int normalizer_parse(json_t *j, struct tok_normalizer *out, struct dsr_err *err) {
    memset(out, 0, sizeof *out);
    if (!j || json_is_null(j)) return 0;
    if (!json_is_object(j)) return dsr_errf(err, "normalizer must be an object or null");
    if (parse_step(j, out, 0, err)) {
        normalizer_free(out);
        return -1;
    }
    return 0;
}

void normalizer_free(struct tok_normalizer *nz) {
    for (int i = 0; i < nz->n; i++) {
        free(nz->steps[i].content);
        tok_regex_free(&nz->steps[i].re);
    }
    free(nz->steps);
    memset(nz, 0, sizeof *nz);
}

/* ---- ICU-backed steps (UTF-8 -> UTF-16 -> op -> UTF-8) ----------------- */

static int to_utf16(const char *s, size_t len, UChar **out, int32_t *n, struct dsr_err *err) {
    *out = malloc((len + 1) * sizeof(UChar)); /* UTF-16 never has more units than UTF-8 bytes */
    if (!*out) return dsr_errf(err, "normalizer: out of memory");
    UErrorCode st = U_ZERO_ERROR;
    u_strFromUTF8(*out, (int32_t)len + 1, n, s, (int32_t)len, &st);
    if (U_FAILURE(st)) return dsr_errf(err, "normalizer: UTF-8 to UTF-16 failed: %s", u_errorName(st));
    return 0;
}

static int from_utf16(const UChar *u, int32_t n, struct tok_buf *out, struct dsr_err *err) {
    out->len = 0;
    if (tok_buf_reserve(out, (size_t)n * 3, err)) return -1;
    UErrorCode st = U_ZERO_ERROR;
    int32_t len = 0;
    u_strToUTF8(out->p, (int32_t)out->cap, &len, u, n, &st);
    if (U_FAILURE(st)) return dsr_errf(err, "normalizer: UTF-16 to UTF-8 failed: %s", u_errorName(st));
    out->len = (size_t)len;
    out->p[out->len] = '\0';
    return 0;
}

/* Runs an ICU UTF-16 transform with one retry at the preflighted size. */
static int icu_transform(const struct tok_norm_step *s, const char *in, size_t len, struct tok_buf *out,
                         struct dsr_err *err) {
    UChar *src = NULL, *dst = NULL;
    int32_t n = 0, m = 0;
    int rc = -1;
    if (to_utf16(in, len, &src, &n, err)) goto done;
    const UNormalizer2 *norm = NULL;
    UErrorCode st = U_ZERO_ERROR;
    if (s->kind == NORM_NFC) norm = unorm2_getNFCInstance(&st);
    else if (s->kind == NORM_NFD) norm = unorm2_getNFDInstance(&st);
    else if (s->kind == NORM_NFKC) norm = unorm2_getNFKCInstance(&st);
    else if (s->kind == NORM_NFKD) norm = unorm2_getNFKDInstance(&st);
    if (U_FAILURE(st)) {
        dsr_errf(err, "normalizer: ICU normalizer unavailable: %s", u_errorName(st));
        goto done;
    }
    int32_t cap = n + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        free(dst);
        dst = malloc((size_t)cap * sizeof(UChar));
        if (!dst) {
            dsr_errf(err, "normalizer: out of memory");
            goto done;
        }
        st = U_ZERO_ERROR;
        if (norm) m = unorm2_normalize(norm, src, n, dst, cap, &st);
        else m = u_strToLower(dst, cap, src, n, "", &st);
        if (st != U_BUFFER_OVERFLOW_ERROR) break;
        cap = m + 16;
    }
    if (U_FAILURE(st)) {
        dsr_errf(err, "normalizer: ICU transform failed: %s", u_errorName(st));
        goto done;
    }
    rc = from_utf16(dst, m, out, err);
done:
    free(src);
    free(dst);
    return rc;
}

static int is_white_space(uint32_t cp) { return u_hasBinaryProperty((UChar32)cp, UCHAR_WHITE_SPACE) != 0; }

static int strip(const struct tok_norm_step *s, const char *in, size_t len, struct tok_buf *out,
                 struct dsr_err *err) {
    size_t a = 0, b = len;
    while (s->strip_left && a < b) {
        int n;
        uint32_t cp = utf8_decode(in + a, b - a, &n);
        if (!is_white_space(cp)) break;
        a += (size_t)n;
    }
    while (s->strip_right && b > a) {
        uint32_t cp = utf8_last(in + a, b - a);
        if (!is_white_space(cp)) break;
        size_t k = b - 1;
        while (k > a && ((unsigned char)in[k] & 0xC0) == 0x80) k--;
        b = k;
    }
    out->len = 0;
    return tok_buf_append(out, in + a, b - a, err);
}

static int replace(const struct tok_norm_step *s, const char *in, size_t len, struct tok_buf *out,
                   struct tok_match_ctx *mc, struct dsr_err *err) {
    struct tok_segs segs = {0};
    int rc = tok_regex_segments(&s->re, in, len, mc, &segs, err);
    out->len = 0;
    for (size_t i = 0; rc == 0 && i < segs.n; i++) {
        if (segs.is_match[i]) rc = tok_buf_append(out, s->content, s->content_len, err);
        else rc = tok_buf_append(out, in + segs.start[i], segs.end[i] - segs.start[i], err);
    }
    if (rc == 0 && out->p == NULL) rc = tok_buf_append(out, "", 0, err);
    tok_segs_free(&segs);
    return rc;
}

static int apply_step(const struct tok_norm_step *s, const char *in, size_t len, struct tok_buf *out,
                      struct tok_match_ctx *mc, struct dsr_err *err) {
    switch (s->kind) {
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD:
    case NORM_LOWERCASE:
        return icu_transform(s, in, len, out, err);
    case NORM_PREPEND: /* HF prepends only to non-empty strings */
        out->len = 0;
        if (len > 0 && tok_buf_append(out, s->content, s->content_len, err)) return -1;
        return tok_buf_append(out, in, len, err);
    case NORM_REPLACE:
        return replace(s, in, len, out, mc, err);
    case NORM_STRIP:
        return strip(s, in, len, out, err);
    }
    return dsr_errf(err, "normalizer: unknown step");
}

int normalizer_apply(const struct tok_normalizer *nz, const char *s, size_t len, struct tok_buf *out,
                     struct tok_match_ctx *mc, struct dsr_err *err) {
    out->len = 0;
    if (tok_buf_append(out, s, len, err)) return -1;
    struct tok_buf tmp = {0};
    int rc = 0;
    for (int i = 0; i < nz->n && rc == 0; i++) {
        rc = apply_step(&nz->steps[i], out->p, out->len, &tmp, mc, err);
        struct tok_buf swap = *out;
        *out = tmp;
        tmp = swap;
    }
    tok_buf_free(&tmp);
    return rc;
}
