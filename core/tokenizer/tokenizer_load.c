/* Building a tokenizer: tokenizer.json parsing (model, added tokens,
 * normalizer, pre-tokenizer, post-processor, decoder), the built-in byte
 * tokenizer, and release. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"
#include "tokenizer/utf8.h"

static int is_null_or_absent(json_t *j) { return !j || json_is_null(j); }

static int add_token(struct tokenizer *t, const char *content, size_t len, int32_t id, int special, int lstrip,
                     int rstrip, int single_word, int normalized, struct dsr_err *err) {
    if (len == 0) return dsr_errf(err, "added_tokens: empty token content");
    if (!utf8_valid(content, len, NULL)) return dsr_errf(err, "added_tokens: content is not valid UTF-8");
    if (id < 0 || id >= TOKENIZER_MAX_ID) return dsr_errf(err, "added_tokens: \"%.60s\" has an invalid id", content);
    int32_t prev;
    if (strmap_get(&t->added_map, content, len, &prev))
        return dsr_errf(err, "added_tokens: \"%.60s\" appears twice", content);
    struct tok_added *v = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *v);
    if (!v) return dsr_errf(err, "added_tokens: out of memory");
    t->added = v;
    struct tok_added *a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    a->content = malloc(len + 1);
    if (!a->content) return dsr_errf(err, "added_tokens: out of memory");
    memcpy(a->content, content, len);
    a->content[len] = '\0';
    a->len = len;
    a->id = id;
    a->special = special;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->single_word = single_word;
    a->normalized = normalized;
    t->n_added++;
    return strmap_put(&t->added_map, content, len, t->n_added - 1, err);
}

static int parse_added(json_t *list, struct tokenizer *t, struct dsr_err *err) {
    if (is_null_or_absent(list)) return 0;
    if (!json_is_array(list)) return dsr_errf(err, "tokenizer.json: \"added_tokens\" must be an array");
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *o = json_array_get(list, i);
        json_t *content = json_object_get(o, "content"), *id = json_object_get(o, "id");
        if (!json_is_string(content) || !json_is_integer(id))
            return dsr_errf(err, "added_tokens[%zu]: needs string \"content\" and integer \"id\"", i);
        /* HF gives a token already in the model vocab its vocab id. */
        int32_t vid = -1;
        json_int_t fid = json_integer_value(id);
        if (fid < 0 || fid >= TOKENIZER_MAX_ID) return dsr_errf(err, "added_tokens[%zu]: invalid id", i);
        if (!strmap_get(&t->bpe.vocab, json_string_value(content), json_string_length(content), &vid))
            vid = (int32_t)fid;
        json_t *norm = json_object_get(o, "normalized");
        int special = json_is_true(json_object_get(o, "special"));
        int normalized = norm ? json_is_true(norm) : !special;
        if (add_token(t, json_string_value(content), json_string_length(content), vid, special,
                      json_is_true(json_object_get(o, "lstrip")), json_is_true(json_object_get(o, "rstrip")),
                      json_is_true(json_object_get(o, "single_word")), normalized, err))
            return dsr_err_prefix(err, "added_tokens[%zu]", i);
    }
    return 0;
}

static int append_ids(int32_t **v, int *n, const int32_t *ids, int k, int at_front, struct dsr_err *err) {
    if (*n + k > 1024) return dsr_errf(err, "post_processor: too many special tokens");
    int32_t *p = realloc(*v, (size_t)(*n + k + 1) * sizeof *p);
    if (!p) return dsr_errf(err, "post_processor: out of memory");
    if (at_front) {
        memmove(p + k, p, (size_t)*n * sizeof *p);
        memcpy(p, ids, (size_t)k * sizeof *p);
    } else {
        memcpy(p + *n, ids, (size_t)k * sizeof *p);
    }
    *v = p;
    *n += k;
    return 0;
}

/* One TemplateProcessing "single" item that is a special token: its ids. */
static int template_special(json_t *item, json_t *specials, int32_t *ids, int *k, struct dsr_err *err) {
    const char *name = json_string_value(json_object_get(json_object_get(item, "SpecialToken"), "id"));
    if (!name) return dsr_errf(err, "post_processor TemplateProcessing: unsupported template item");
    json_t *idl = json_object_get(json_object_get(specials, name), "ids");
    if (!json_is_array(idl) || json_array_size(idl) > 64)
        return dsr_errf(err, "post_processor TemplateProcessing: special token \"%.60s\" has no ids", name);
    *k = 0;
    for (size_t i = 0; i < json_array_size(idl); i++) {
        json_int_t v = json_integer_value(json_array_get(idl, i));
        if (!json_is_integer(json_array_get(idl, i)) || v < 0 || v >= TOKENIZER_MAX_ID)
            return dsr_errf(err, "post_processor TemplateProcessing: bad id for \"%.60s\"", name);
        ids[(*k)++] = (int32_t)v;
    }
    return 0;
}

static int pair_id(json_t *pair, int32_t *id, const char *what, struct dsr_err *err) {
    json_t *v = json_array_get(pair, 1);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= TOKENIZER_MAX_ID)
        return dsr_errf(err, "post_processor: \"%s\" must be [token, id]", what);
    *id = (int32_t)json_integer_value(v);
    return 0;
}

/* Collects the ids a post-processor puts before and after one sequence.
 * Nested processors wrap the result of the previous ones. */
static int parse_post(json_t *j, struct tokenizer *t, int depth, struct dsr_err *err) {
    if (is_null_or_absent(j)) return 0;
    if (depth > 8) return dsr_errf(err, "post_processor: Sequence nested too deeply");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return dsr_errf(err, "post_processor: missing \"type\"");
    if (strcmp(type, "ByteLevel") == 0) return 0; /* only trims offsets */
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(j, "processors");
        for (size_t i = 0; i < json_array_size(list); i++)
            if (parse_post(json_array_get(list, i), t, depth + 1, err)) return -1;
        return 0;
    }
    int32_t pre[1024], suf[1024];
    int npre = 0, nsuf = 0;
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        if (pair_id(json_object_get(j, "cls"), &pre[0], "cls", err) ||
            pair_id(json_object_get(j, "sep"), &suf[0], "sep", err))
            return -1;
        npre = nsuf = 1;
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        json_t *single = json_object_get(j, "single"), *specials = json_object_get(j, "special_tokens");
        if (!json_is_array(single)) return dsr_errf(err, "post_processor TemplateProcessing: \"single\" missing");
        int seen_a = 0;
        for (size_t i = 0; i < json_array_size(single); i++) {
            json_t *item = json_array_get(single, i);
            json_t *seq = json_object_get(item, "Sequence");
            if (seq) {
                const char *sid = json_string_value(json_object_get(seq, "id"));
                if (seen_a || !sid || strcmp(sid, "A") != 0)
                    return dsr_errf(err, "post_processor TemplateProcessing: single template must use sequence A once");
                seen_a = 1;
                continue;
            }
            int32_t ids[64];
            int k = 0;
            if (template_special(item, specials, ids, &k, err)) return -1;
            int *n = seen_a ? &nsuf : &npre;
            int32_t *dst = seen_a ? suf : pre;
            if (*n + k > 1024) return dsr_errf(err, "post_processor: too many special tokens");
            memcpy(dst + *n, ids, (size_t)k * sizeof *ids);
            *n += k;
        }
        if (!seen_a) return dsr_errf(err, "post_processor TemplateProcessing: single template lacks sequence A");
    } else {
        return dsr_errf(err, "post_processor \"%s\" is not supported", type);
    }
    if (append_ids(&t->post_prefix, &t->n_post_prefix, pre, npre, 1, err)) return -1;
    return append_ids(&t->post_suffix, &t->n_post_suffix, suf, nsuf, 0, err);
}

static int parse_decoder(json_t *j, struct tokenizer *t, struct dsr_err *err) {
    if (is_null_or_absent(j)) {
        t->decoder = DECODER_NONE;
        return 0;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && strcmp(type, "ByteLevel") == 0) {
        t->decoder = DECODER_BYTELEVEL;
        return 0;
    }
    return dsr_errf(err, "decoder \"%s\" is not supported", type ? type : "(no type)");
}

int tokenizer_finish(struct tokenizer *t, struct dsr_err *err) {
    int32_t max_id = -1;
    for (size_t e = 0; e < t->bpe.vocab.n; e++)
        if (t->bpe.vocab.ents[e].val > max_id) max_id = t->bpe.vocab.ents[e].val;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    for (int i = 0; i < t->n_post_prefix; i++)
        if (t->post_prefix[i] > max_id) return dsr_errf(err, "post_processor: id %d is not in the vocab", t->post_prefix[i]);
    for (int i = 0; i < t->n_post_suffix; i++)
        if (t->post_suffix[i] > max_id) return dsr_errf(err, "post_processor: id %d is not in the vocab", t->post_suffix[i]);
    t->n_ids = max_id + 1;
    size_t n = t->n_ids > 0 ? (size_t)t->n_ids : 1;
    t->id_str = calloc(n, sizeof *t->id_str);
    t->id_len = calloc(n, sizeof *t->id_len);
    t->id_special = calloc(n, 1);
    if (!t->id_str || !t->id_len || !t->id_special) return dsr_errf(err, "tokenizer: out of memory (id table)");
    for (size_t e = 0; e < t->bpe.vocab.n; e++) {
        const struct tok_strent *ent = &t->bpe.vocab.ents[e];
        if (t->id_str[ent->val]) continue; /* two strings with one id: the first is kept */
        t->id_str[ent->val] = t->bpe.vocab.arena + ent->off;
        t->id_len[ent->val] = ent->len;
    }
    for (int i = 0; i < t->n_added; i++) { /* added tokens take precedence, as in HF */
        struct tok_added *a = &t->added[i];
        t->id_str[a->id] = a->content;
        t->id_len[a->id] = (uint32_t)a->len;
        t->id_special[a->id] = (unsigned char)a->special;
        if (!a->pattern) {
            a->pattern = a->content;
            a->pattern_len = a->len;
        }
    }
    if (added_matcher_build(&t->match_raw, t->added, t->n_added, 0, err)) return -1;
    return added_matcher_build(&t->match_norm, t->added, t->n_added, 1, err);
}

/* A normalized added token is matched in its normalized form (HF refreshes
 * its trie with the normalizer applied to the content). */
static int normalize_added(struct tokenizer *t, struct dsr_err *err) {
    if (t->normalizer.n == 0) return 0;
    struct tok_match_ctx mc;
    if (tok_match_ctx_init(&mc, err)) return -1;
    int rc = 0;
    for (int i = 0; i < t->n_added && rc == 0; i++) {
        struct tok_added *a = &t->added[i];
        if (!a->normalized) continue;
        struct tok_buf out = {0};
        rc = normalizer_apply(&t->normalizer, a->content, a->len, &out, &mc, err);
        if (rc == 0) {
            a->pattern = out.p;
            a->pattern_len = out.len;
        } else {
            tok_buf_free(&out);
        }
    }
    tok_match_ctx_free(&mc);
    return rc;
}

int tokenizer_load_json(const char *json, size_t len, struct tokenizer **out, struct dsr_err *err) {
    *out = NULL;
    if (len > TOKENIZER_MAX_FILE_BYTES) return dsr_errf(err, "tokenizer.json: %zu bytes exceeds the limit", len);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) return dsr_errf(err, "tokenizer.json: line %d: %s", jerr.line, jerr.text);
    struct tokenizer *t = calloc(1, sizeof *t);
    int rc = -1;
    if (!t) {
        dsr_errf(err, "tokenizer: out of memory");
        goto done;
    }
    t->bpe.unk_id = -1;
    if (!json_is_object(root)) {
        dsr_errf(err, "tokenizer.json: top level must be an object");
        goto done;
    }
    if (!is_null_or_absent(json_object_get(root, "truncation"))) {
        dsr_errf(err, "tokenizer.json: truncation is not supported (must be null)");
        goto done;
    }
    if (!is_null_or_absent(json_object_get(root, "padding"))) {
        dsr_errf(err, "tokenizer.json: padding is not supported (must be null)");
        goto done;
    }
    if (bpe_parse(json_object_get(root, "model"), &t->bpe, err) ||
        normalizer_parse(json_object_get(root, "normalizer"), &t->normalizer, err) ||
        pretokenizer_parse(json_object_get(root, "pre_tokenizer"), &t->pretok, err) ||
        parse_added(json_object_get(root, "added_tokens"), t, err) || normalize_added(t, err) ||
        parse_post(json_object_get(root, "post_processor"), t, 0, err) ||
        parse_decoder(json_object_get(root, "decoder"), t, err) || tokenizer_finish(t, err))
        goto done;
    rc = 0;
done:
    json_decref(root);
    if (rc) tokenizer_free(t);
    else *out = t;
    return rc;
}

int tokenizer_load(const char *path, struct tokenizer **out, struct dsr_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return dsr_errf(err, "%s: cannot open", path);
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (size_t)st.st_size > TOKENIZER_MAX_FILE_BYTES) {
        fclose(f);
        return dsr_errf(err, "%s: not a readable file under %zu bytes", path, TOKENIZER_MAX_FILE_BYTES);
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    if (!buf) {
        fclose(f);
        return dsr_errf(err, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, len, f);
    fclose(f);
    if (got != len) {
        free(buf);
        return dsr_errf(err, "%s: short read", path);
    }
    int rc = tokenizer_load_json(buf, len, out, err);
    free(buf);
    if (rc) dsr_err_prefix(err, "%s", path);
    return rc;
}

int tokenizer_new_bytes(const char *const *specials, int n_specials, int first_special_id, struct tokenizer **out,
                        struct dsr_err *err) {
    *out = NULL;
    if (n_specials < 0 || n_specials > 4096) return dsr_errf(err, "byte tokenizer: %d special tokens", n_specials);
    if (first_special_id < 256 || first_special_id > TOKENIZER_MAX_ID - n_specials)
        return dsr_errf(err, "byte tokenizer: first special id %d must be >= 256", first_special_id);
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) return dsr_errf(err, "byte tokenizer: out of memory");
    t->bpe.unk_id = -1;
    uint32_t cps[256];
    bytelevel_tables(cps);
    int rc = pairmap_init(&t->bpe.merges, 0, err);
    for (int b = 0; b < 256 && rc == 0; b++) { /* id b is raw byte b */
        char enc[4];
        int n = utf8_encode(cps[b], enc);
        rc = strmap_put(&t->bpe.vocab, enc, (size_t)n, b, err);
    }
    if (rc == 0) bpe_index_chars(&t->bpe);
    t->pretok.steps = calloc(1, sizeof *t->pretok.steps);
    if (rc == 0 && !t->pretok.steps) rc = dsr_errf(err, "byte tokenizer: out of memory");
    if (rc == 0) {
        t->pretok.n = 1;
        t->pretok.steps[0].kind = PRETOK_BYTELEVEL; /* no prefix space, no regex */
    }
    t->decoder = DECODER_BYTELEVEL;
    for (int i = 0; i < n_specials && rc == 0; i++) {
        if (!specials[i]) rc = dsr_errf(err, "byte tokenizer: special %d is NULL", i);
        else rc = add_token(t, specials[i], strlen(specials[i]), first_special_id + i, 1, 0, 0, 0, 0, err);
    }
    if (rc == 0) rc = tokenizer_finish(t, err);
    if (rc) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tokenizer_free(struct tokenizer *t) {
    if (!t) return;
    bpe_free(&t->bpe);
    for (int i = 0; i < t->n_added; i++) {
        if (t->added[i].pattern != t->added[i].content) free(t->added[i].pattern);
        free(t->added[i].content);
    }
    free(t->added);
    strmap_free(&t->added_map);
    added_matcher_free(&t->match_raw);
    added_matcher_free(&t->match_norm);
    normalizer_free(&t->normalizer);
    pretokenizer_free(&t->pretok);
    free(t->post_prefix);
    free(t->post_suffix);
    free(t->id_str);
    free(t->id_len);
    free(t->id_special);
    free(t);
}
