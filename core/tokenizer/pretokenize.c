/* Pre-tokenizers of tokenizer.json: Split (every behavior, invert),
 * ByteLevel (GPT-2 regex optional, add_prefix_space), Digits, Sequence.
 * Each step maps a list of pieces to a new list; empty pieces are dropped,
 * as HF's PreTokenizedString::split does. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

/* The regex HF's ByteLevel pre-tokenizer uses when use_regex is true. */
static const char GPT2_REGEX[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void bytelevel_tables(uint32_t byte_to_cp[256]) {
    /* Printable Latin-1 bytes map to themselves; the other 68 bytes take
     * code points 256, 257, ... in byte order (GPT-2's bytes_to_unicode). */
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = printable ? (uint32_t)b : next++;
    }
}

static int push_step(struct tok_pretokenizer *pt, struct tok_pretok_step *s, struct dsr_err *err) {
    struct tok_pretok_step *v = realloc(pt->steps, (size_t)(pt->n + 1) * sizeof *v);
    if (!v) return dsr_errf(err, "pre_tokenizer: out of memory");
    pt->steps = v;
    pt->steps[pt->n++] = *s;
    return 0;
}

static int parse_behavior(json_t *j, enum tok_split_behavior *b, struct dsr_err *err) {
    const char *s = json_string_value(j);
    if (!s) return dsr_errf(err, "pre_tokenizer Split: \"behavior\" must be a string");
    if (strcmp(s, "Removed") == 0) *b = SPLIT_REMOVED;
    else if (strcmp(s, "Isolated") == 0) *b = SPLIT_ISOLATED;
    else if (strcmp(s, "MergedWithPrevious") == 0) *b = SPLIT_MERGED_PREV;
    else if (strcmp(s, "MergedWithNext") == 0) *b = SPLIT_MERGED_NEXT;
    else if (strcmp(s, "Contiguous") == 0) *b = SPLIT_CONTIGUOUS;
    else return dsr_errf(err, "pre_tokenizer Split: behavior \"%s\" is not supported", s);
    return 0;
}

static int parse_step(json_t *j, struct tok_pretokenizer *pt, int depth, struct dsr_err *err) {
    if (depth > 8) return dsr_errf(err, "pre_tokenizer: Sequence nested too deeply");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return dsr_errf(err, "pre_tokenizer: missing \"type\"");
    struct tok_pretok_step s;
    memset(&s, 0, sizeof s);
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(j, "pretokenizers");
        if (!json_is_array(list)) return dsr_errf(err, "pre_tokenizer Sequence: \"pretokenizers\" must be an array");
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_step(json_array_get(list, i), pt, depth + 1, err)) return -1;
        return 0;
    } else if (strcmp(type, "Split") == 0) {
        s.kind = PRETOK_SPLIT;
        if (parse_behavior(json_object_get(j, "behavior"), &s.behavior, err)) return -1;
        s.invert = json_is_true(json_object_get(j, "invert"));
        json_t *pat = json_object_get(j, "pattern");
        json_t *str = json_object_get(pat, "String"), *re = json_object_get(pat, "Regex");
        int rc;
        if (json_is_string(str))
            rc = tok_regex_compile(&s.re, json_string_value(str), json_string_length(str), 1, "pre_tokenizer Split", err);
        else if (json_is_string(re))
            rc = tok_regex_compile(&s.re, json_string_value(re), json_string_length(re), 0, "pre_tokenizer Split", err);
        else
            rc = dsr_errf(err, "pre_tokenizer Split: pattern must be {\"String\": ...} or {\"Regex\": ...}");
        if (rc) return -1;
    } else if (strcmp(type, "ByteLevel") == 0) {
        s.kind = PRETOK_BYTELEVEL;
        s.add_prefix_space = json_is_true(json_object_get(j, "add_prefix_space"));
        json_t *ur = json_object_get(j, "use_regex");
        s.use_regex = ur ? json_is_true(ur) : 1; /* HF default: true */
        if (s.use_regex &&
            tok_regex_compile(&s.re, GPT2_REGEX, strlen(GPT2_REGEX), 0, "pre_tokenizer ByteLevel", err))
            return -1;
    } else if (strcmp(type, "Digits") == 0) {
        /* Rust char::is_numeric is \p{N}; each numeric char is one match, so
         * individual digits are Isolated and runs of digits Contiguous. */
        s.kind = PRETOK_SPLIT;
        s.behavior = json_is_true(json_object_get(j, "individual_digits")) ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
        if (tok_regex_compile(&s.re, "\\p{N}", 5, 0, "pre_tokenizer Digits", err)) return -1;
    } else {
        return dsr_errf(err, "pre_tokenizer \"%s\" is not supported", type);
    }
    if (push_step(pt, &s, err)) {
        tok_regex_free(&s.re);
        return -1;
    }
    return 0;
}

int pretokenizer_parse(json_t *j, struct tok_pretokenizer *out, struct dsr_err *err) {
    memset(out, 0, sizeof *out);
    if (!j || json_is_null(j)) return 0;
    if (!json_is_object(j)) return dsr_errf(err, "pre_tokenizer must be an object or null");
    if (parse_step(j, out, 0, err)) {
        pretokenizer_free(out);
        return -1;
    }
    return 0;
}

void pretokenizer_free(struct tok_pretokenizer *pt) {
    for (int i = 0; i < pt->n; i++) tok_regex_free(&pt->steps[i].re);
    free(pt->steps);
    memset(pt, 0, sizeof *pt);
}

/* Appends the pieces of one Split over s (HF NormalizedString::split). */
static int split_piece(const struct tok_pretok_step *st, const char *s, size_t len, struct tok_pieces *out,
                       struct tok_match_ctx *mc, struct tok_segs *sg, struct dsr_err *err) {
    if (tok_regex_segments(&st->re, s, len, mc, sg, err)) return -1;
    if (st->invert)
        for (size_t i = 0; i < sg->n; i++) sg->is_match[i] = !sg->is_match[i];
    /* Rewrite the segments in place into (start, end, remove) pieces. */
    size_t n = 0;
    int prev_match = 0;
    switch (st->behavior) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < sg->n; i++) sg->is_match[i] = 0;
        n = sg->n;
        break;
    case SPLIT_REMOVED:
        n = sg->n;
        break;
    case SPLIT_CONTIGUOUS: /* runs of equal match-ness become one piece */
        for (size_t i = 0; i < sg->n; i++) {
            int m = sg->is_match[i];
            if (n > 0 && m == prev_match) sg->end[n - 1] = sg->end[i];
            else {
                sg->start[n] = sg->start[i];
                sg->end[n] = sg->end[i];
                sg->is_match[n] = 0;
                n++;
            }
            prev_match = m;
        }
        break;
    case SPLIT_MERGED_PREV: /* a match joins the piece before it */
        for (size_t i = 0; i < sg->n; i++) {
            int m = sg->is_match[i];
            if (m && !prev_match && n > 0) sg->end[n - 1] = sg->end[i];
            else {
                sg->start[n] = sg->start[i];
                sg->end[n] = sg->end[i];
                sg->is_match[n] = 0;
                n++;
            }
            prev_match = m;
        }
        break;
    case SPLIT_MERGED_NEXT: { /* a match joins the piece after it: same walk, reversed */
        size_t w = sg->n; /* fill from the back; pieces end up in sg[w .. sg->n) */
        for (size_t k = sg->n; k-- > 0;) {
            int m = sg->is_match[k];
            size_t a = sg->start[k], b = sg->end[k];
            if (m && !prev_match && w < sg->n) sg->start[w] = a;
            else {
                w--;
                sg->start[w] = a;
                sg->end[w] = b;
                sg->is_match[w] = 0;
            }
            prev_match = m;
        }
        for (size_t i = w; i < sg->n; i++) {
            sg->start[i - w] = sg->start[i];
            sg->end[i - w] = sg->end[i];
            sg->is_match[i - w] = 0;
        }
        n = sg->n - w;
        break;
    }
    }
    for (size_t i = 0; i < n; i++) {
        if (sg->is_match[i] || sg->end[i] == sg->start[i]) continue; /* removed or empty */
        if (pieces_push(out, s + sg->start[i], sg->end[i] - sg->start[i], err)) return -1;
    }
    return 0;
}

/* Appends s with every byte replaced by its byte-level character. */
static int push_bytelevel(const char *s, size_t len, const char map[256][2], const unsigned char maplen[256],
                          struct tok_pieces *out, struct tok_buf *tmp, struct dsr_err *err) {
    tmp->len = 0;
    if (tok_buf_reserve(tmp, len * 2, err)) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        tmp->p[tmp->len++] = map[b][0];
        if (maplen[b] == 2) tmp->p[tmp->len++] = map[b][1];
    }
    return pieces_push(out, tmp->p, tmp->len, err);
}

static int bytelevel_piece(const struct tok_pretok_step *st, const char *s, size_t len, struct tok_pieces *out,
                           struct tok_match_ctx *mc, struct tok_segs *sg, const char map[256][2],
                           const unsigned char maplen[256], struct tok_buf *tmp, struct tok_buf *pre,
                           struct dsr_err *err) {
    if (st->add_prefix_space && len > 0 && s[0] != ' ') {
        pre->len = 0;
        if (tok_buf_append(pre, " ", 1, err) || tok_buf_append(pre, s, len, err)) return -1;
        s = pre->p;
        len = pre->len;
    }
    if (!st->use_regex) return len ? push_bytelevel(s, len, map, maplen, out, tmp, err) : 0;
    if (tok_regex_segments(&st->re, s, len, mc, sg, err)) return -1;
    for (size_t i = 0; i < sg->n; i++) {
        if (sg->end[i] == sg->start[i]) continue;
        if (push_bytelevel(s + sg->start[i], sg->end[i] - sg->start[i], map, maplen, out, tmp, err)) return -1;
    }
    return 0;
}

int pretokenizer_apply(const struct tok_pretokenizer *pt, struct tok_pieces *a, struct tok_pieces *b,
                       struct tok_match_ctx *mc, struct tok_segs *segs, struct dsr_err *err) {
    char map[256][2];
    unsigned char maplen[256];
    uint32_t cps[256];
    bytelevel_tables(cps);
    for (int i = 0; i < 256; i++) {
        char enc[4];
        maplen[i] = (unsigned char)utf8_encode(cps[i], enc); /* all below U+0800: 1 or 2 bytes */
        map[i][0] = enc[0];
        map[i][1] = enc[1];
    }
    struct tok_buf tmp = {0}, pre = {0};
    int rc = 0;
    for (int k = 0; k < pt->n && rc == 0; k++) {
        const struct tok_pretok_step *st = &pt->steps[k];
        pieces_clear(b);
        for (size_t i = 0; i < a->n && rc == 0; i++) {
            const char *s = a->text.p + a->v[i].off;
            size_t len = a->v[i].len;
            if (st->kind == PRETOK_SPLIT) rc = split_piece(st, s, len, b, mc, segs, err);
            else rc = bytelevel_piece(st, s, len, b, mc, segs, map, maplen, &tmp, &pre, err);
        }
        struct tok_pieces swap = *a;
        *a = *b;
        *b = swap;
    }
    tok_buf_free(&tmp);
    tok_buf_free(&pre);
    return rc;
}
