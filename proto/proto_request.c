#include "proto_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "proto_fields.h"

/* ---------- building blocks ---------- */

int proto_check_keys(const json_t *obj, const char *path, const char *const *allowed, struct proto_error *e) {
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(key, *a) == 0) ok = 1;
        if (!ok) {
            char p[PROTO_PARAM_MAX];
            proto_path(p, sizeof p, path, key);
            return proto_fail(e, 400, p, "unknown field %s", p);
        }
    }
    return 0;
}

static int need_object(const json_t *v, const char *path, struct proto_error *e) {
    if (!json_is_object(v)) return proto_fail(e, 400, path[0] ? path : NULL, "%s must be an object", path[0] ? path : "the body");
    return 0;
}

int proto_decode_ids(const json_t *v, const char *path, int32_t bound, int max_n, const char *what, int32_t **out,
                     int *n_out, struct proto_error *e) {
    *out = NULL;
    *n_out = 0;
    if (!json_is_array(v)) return proto_fail(e, 400, path, "%s must be an array of %s", path, what);
    size_t n = json_array_size(v);
    if (n == 0) return proto_fail(e, 400, path, "%s is empty", path);
    if (n > (size_t)max_n) return proto_fail(e, 400, path, "%s has %zu %s, over the limit of %d", path, n, what, max_n);
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return proto_fail(e, 500, path, "out of memory for %s", path);
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        char p[PROTO_PARAM_MAX];
        proto_path_index(p, sizeof p, path, (int)i);
        if (!json_is_integer(x)) {
            free(ids);
            return proto_fail(e, 400, p, "%s must be an integer", p);
        }
        json_int_t id = json_integer_value(x);
        if (id < 0 || id >= bound) {
            free(ids);
            return proto_fail(e, 400, p, "%s = %lld is outside the %s range [0, %d)", p, (long long)id, what, bound);
        }
        ids[i] = (int32_t)id;
    }
    *out = ids;
    *n_out = (int)n;
    return 0;
}

int proto_decode_span(const json_t *v, const char *path, const struct proto_limits *lim, struct proto_span *out,
                      struct proto_error *e) {
    memset(out, 0, sizeof *out);
    static const char *const keys[] = {"text", "tokens", NULL};
    if (need_object(v, path, e) || proto_check_keys(v, path, keys, e)) return -1;
    const json_t *text = json_object_get(v, "text"), *tokens = json_object_get(v, "tokens");
    if ((text != NULL) == (tokens != NULL))
        return proto_fail(e, 400, path, "%s must have exactly one of \"text\" or \"tokens\"", path);
    char p[PROTO_PARAM_MAX];
    if (tokens) {
        proto_path(p, sizeof p, path, "tokens");
        if (proto_decode_ids(tokens, p, lim->vocab_size, lim->max_span_tokens, "token ids", &out->tokens,
                             &out->n_tokens, e))
            return -1;
        out->kind = PROTO_SPAN_TOKENS;
        return 0;
    }
    const char *s;
    size_t n;
    if (proto_get_string(v, path, "text", lim->max_text_bytes, &s, &n, e) < 0) return -1;
    out->text = proto_strdup(s, n);
    if (!out->text) return proto_fail(e, 500, path, "out of memory");
    out->text_len = n;
    out->kind = PROTO_SPAN_TEXT;
    return 0;
}

void proto_span_free(struct proto_span *s) {
    free(s->text);
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

int proto_decode_image(const json_t *v, const char *path, const struct proto_limits *lim, bool whole_codes,
                       struct proto_image *out, struct proto_error *e) {
    memset(out, 0, sizeof *out);
    static const char *const keys[] = {"png", "jpeg", "codes", "path", NULL};
    if (need_object(v, path, e) || proto_check_keys(v, path, keys, e)) return -1;
    if (json_object_size(v) != 1)
        return proto_fail(e, 400, path, "%s must have exactly one of \"png\", \"jpeg\", \"codes\" or \"path\"", path);
    char p[PROTO_PARAM_MAX];
    const json_t *codes = json_object_get(v, "codes");
    if (codes) {
        proto_path(p, sizeof p, path, "codes");
        if (proto_decode_ids(codes, p, lim->codebook_size, lim->n_image_codes, "VQ codes", &out->codes,
                             &out->n_codes, e))
            return -1;
        if (whole_codes && out->n_codes != lim->n_image_codes) {
            proto_image_free(out);
            return proto_fail(e, 400, p, "%s must hold the image's %d codes", p, lim->n_image_codes);
        }
        out->kind = PROTO_IMAGE_CODES;
        return 0;
    }
    const char *s;
    size_t n;
    if (json_object_get(v, "path")) {
        proto_path(p, sizeof p, path, "path");
        if (proto_get_string(v, path, "path", 4096, &s, &n, e) < 0) return -1;
        if (!lim->load_path) return proto_fail(e, 400, p, "%s: this server reads no image files", p);
        return lim->load_path(lim->load_path_ctx, s, p, lim, out, e);
    }
    /* "png" and "jpeg" both take either format (recognised by signature):
     * the key documents what the sender meant, the bytes decide */
    const char *key = json_object_get(v, "jpeg") ? "jpeg" : "png";
    proto_path(p, sizeof p, path, key);
    /* base64 inflates by 4/3: bound the text before decoding it */
    if (proto_get_string(v, path, key, lim->max_png_bytes / 3 * 4 + 4, &s, &n, e) < 0) return -1;
    return proto_decode_image_base64(s, n, p, lim, out, e);
}

int proto_decode_image_base64(const char *s, size_t n, const char *p, const struct proto_limits *lim,
                              struct proto_image *out, struct proto_error *e) {
    memset(out, 0, sizeof *out);
    if (n > lim->max_png_bytes / 3 * 4 + 4)
        return proto_fail(e, 400, p, "%s is over the limit of %zu bytes", p, lim->max_png_bytes / 3 * 4 + 4);
    uint8_t *bytes;
    size_t nbytes, bad;
    if (base64_decode(s, n, &bytes, &nbytes, &bad)) {
        if (bad >= n) return proto_fail(e, 400, p, "%s is not valid base64 (length %zu is not a multiple of 4)", p, n);
        return proto_fail(e, 400, p, "%s is not valid base64 (bad character at offset %zu)", p, bad);
    }
    struct dsr_err err = {{0}};
    int rc = image_decode_rgb8(bytes, nbytes, &lim->png, &out->rgb, &out->width, &out->height, &err);
    free(bytes);
    if (rc) return proto_fail(e, 400, p, "%s: %s", p, err.msg);
    out->kind = PROTO_IMAGE_RGB;
    return 0;
}

void proto_image_free(struct proto_image *im) {
    free(im->codes);
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

int proto_decode_task(const json_t *v, const char *path, enum proto_task *out, struct proto_error *e) {
    if (json_is_string(v) && strcmp(json_string_value(v), "understanding") == 0) *out = PROTO_TASK_UNDERSTANDING;
    else if (json_is_string(v) && strcmp(json_string_value(v), "generation") == 0) *out = PROTO_TASK_GENERATION;
    else return proto_fail(e, 400, path, "%s must be \"understanding\" or \"generation\"", path);
    return 0;
}

/* The "items" array of /logprobs and /score. */
static int items_array(const json_t *body, const struct proto_limits *lim, size_t *n, struct proto_error *e) {
    const json_t *items;
    if (proto_require(body, "", "items", &items, e) < 0) return -1;
    if (!json_is_array(items)) return proto_fail(e, 400, "items", "items must be an array");
    *n = json_array_size(items);
    if (*n == 0) return proto_fail(e, 400, "items", "items is empty");
    if (*n > (size_t)lim->max_items)
        return proto_fail(e, 400, "items", "items has %zu entries, over the limit of %d", *n, lim->max_items);
    return 0;
}

/* Decodes body.items (checked by items_array: n entries) into a new zeroed
 * array of n items of item_size bytes, one decode(item i) each, naming
 * "items[i]" in errors.  *out is set before decoding, so on failure the
 * caller's free function releases the items decoded so far. */
typedef int (*item_decoder)(const json_t *v, const char *path, const struct proto_limits *lim, void *item,
                            struct proto_error *e);
static int decode_items(const json_t *body, const struct proto_limits *lim, size_t n, size_t item_size,
                        item_decoder decode, void **out, int *n_out, struct proto_error *e) {
    char *items = calloc(n, item_size);
    *out = items;
    if (!items) return proto_fail(e, 500, "items", "out of memory");
    *n_out = (int)n;
    const json_t *arr = json_object_get(body, "items");
    for (size_t i = 0; i < n; i++) {
        char p[PROTO_PARAM_MAX];
        proto_path_index(p, sizeof p, "items", (int)i);
        if (decode(json_array_get(arr, i), p, lim, items + i * item_size, e)) return -1;
    }
    return 0;
}

/* ---------- POST /logprobs ---------- */

static int decode_logprobs_item(const json_t *v, const char *path, const struct proto_limits *lim, void *item,
                                struct proto_error *e) {
    struct proto_logprobs_item *it = item;
    static const char *const keys[] = {"context", "image", "target", NULL};
    if (need_object(v, path, e) || proto_check_keys(v, path, keys, e)) return -1;
    char p[PROTO_PARAM_MAX];
    const json_t *x;
    if (proto_require(v, path, "context", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "context");
    if (proto_decode_span(x, p, lim, &it->context, e)) return -1;
    if ((x = json_object_get(v, "image"))) {
        proto_path(p, sizeof p, path, "image");
        if (proto_decode_image(x, p, lim, true, &it->image, e)) return -1;
    }
    if (proto_require(v, path, "target", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "target");
    if (json_is_object(x) && (json_object_get(x, "codes") || json_object_get(x, "png") || json_object_get(x, "jpeg") ||
                               json_object_get(x, "path"))) {
        it->target_is_image = true;
        return proto_decode_image(x, p, lim, false, &it->target_image, e);
    }
    return proto_decode_span(x, p, lim, &it->target, e);
}

int proto_decode_logprobs(const json_t *body, const struct proto_limits *lim, struct proto_logprobs_req *out,
                          struct proto_error *e) {
    memset(out, 0, sizeof *out);
    static const char *const keys[] = {"items", NULL};
    size_t n;
    if (need_object(body, "", e) || proto_check_keys(body, "", keys, e) || items_array(body, lim, &n, e)) return -1;
    void *items;
    int rc = decode_items(body, lim, n, sizeof *out->items, decode_logprobs_item, &items, &out->n_items, e);
    out->items = items;
    if (rc) proto_logprobs_free(out);
    return rc;
}

void proto_logprobs_free(struct proto_logprobs_req *r) {
    for (int i = 0; i < r->n_items; i++) {
        proto_span_free(&r->items[i].context);
        proto_image_free(&r->items[i].image);
        proto_span_free(&r->items[i].target);
        proto_image_free(&r->items[i].target_image);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* ---------- POST /score ---------- */

static int decode_score_item(const json_t *v, const char *path, const struct proto_limits *lim, void *item,
                             struct proto_error *e) {
    struct proto_score_item *it = item;
    static const char *const keys[] = {"task", "image", "response", "prompt", NULL};
    if (need_object(v, path, e) || proto_check_keys(v, path, keys, e)) return -1;
    char p[PROTO_PARAM_MAX];
    const json_t *x;
    if (proto_require(v, path, "task", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "task");
    if (proto_decode_task(x, p, &it->task, e)) return -1;
    const char *text_key = it->task == PROTO_TASK_UNDERSTANDING ? "response" : "prompt";
    const char *other_key = it->task == PROTO_TASK_UNDERSTANDING ? "prompt" : "response";
    if (json_object_get(v, other_key)) {
        proto_path(p, sizeof p, path, other_key);
        return proto_fail(e, 400, p, "%s does not apply to a %s item", p,
                          it->task == PROTO_TASK_UNDERSTANDING ? "understanding" : "generation");
    }
    if (proto_require(v, path, "image", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "image");
    if (proto_decode_image(x, p, lim, true, &it->image, e)) return -1;
    if (proto_require(v, path, text_key, &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, text_key);
    return proto_decode_span(x, p, lim, &it->text, e);
}

int proto_decode_score(const json_t *body, const struct proto_limits *lim, struct proto_score_req *out,
                       struct proto_error *e) {
    memset(out, 0, sizeof *out);
    static const char *const keys[] = {"items", "token_logprobs", NULL};
    size_t n;
    if (need_object(body, "", e) || proto_check_keys(body, "", keys, e) || items_array(body, lim, &n, e) ||
        proto_get_bool(body, "", "token_logprobs", &out->token_logprobs, e) < 0)
        return -1;
    void *items;
    int rc = decode_items(body, lim, n, sizeof *out->items, decode_score_item, &items, &out->n_items, e);
    out->items = items;
    if (rc) proto_score_free(out);
    return rc;
}

void proto_score_free(struct proto_score_req *r) {
    for (int i = 0; i < r->n_items; i++) {
        proto_image_free(&r->items[i].image);
        proto_span_free(&r->items[i].text);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* ---------- POST /rollout ---------- */

int proto_decode_rollout(const json_t *body, const struct proto_limits *lim, struct proto_rollout_req *r,
                         struct proto_error *e) {
    memset(r, 0, sizeof *r);
    static const char *const keys[] = {"task", "context", "image", "question", "prompt", "n", "max_tokens",
                                       "temperature", "top_k", "top_p", "seed", "score", "return_png", "cfg_scale",
                                       NULL};
    const json_t *x;
    if (need_object(body, "", e) || proto_check_keys(body, "", keys, e)) return -1;
    if (proto_require(body, "", "task", &x, e) < 0 || proto_decode_task(x, "task", &r->task, e)) return -1;
    r->n = 1;
    r->max_tokens = 64 < lim->max_new_tokens ? 64 : lim->max_new_tokens;
    r->temperature = lim->default_temperature > 0 ? lim->default_temperature : 1.0f;
    r->top_p = lim->default_top_p > 0 ? lim->default_top_p : 1.0f;
    r->top_k = lim->default_top_k;
    r->cfg_scale = lim->default_cfg_scale > 0 ? lim->default_cfg_scale : 5.0f;
    long long ll;
    if (proto_get_int(body, "", "n", 1, lim->max_group, &ll, e) < 0) goto fail;
    if (json_object_get(body, "n")) r->n = (int)ll;
    if (proto_get_int(body, "", "max_tokens", 1, lim->max_new_tokens, &ll, e) < 0) goto fail;
    if (json_object_get(body, "max_tokens")) r->max_tokens = (int)ll;
    if (proto_get_int(body, "", "top_k", 0, INT32_MAX, &ll, e) < 0) goto fail;
    if (json_object_get(body, "top_k")) r->top_k = (int)ll;
    if (proto_get_float(body, "", "temperature", 0.0, 100.0, false, &r->temperature, e) < 0 ||
        proto_get_float(body, "", "top_p", 0.0, 1.0, true, &r->top_p, e) < 0 ||
        proto_get_float(body, "", "cfg_scale", 0.0, 1000.0, false, &r->cfg_scale, e) < 0)
        goto fail;
    int has = proto_get_int(body, "", "seed", 0, INT64_MAX, &ll, e);
    if (has < 0) goto fail;
    r->has_seed = has == 1;
    if (r->has_seed) r->seed = (uint64_t)ll;
    if (proto_get_bool(body, "", "score", &r->score, e) < 0 || proto_get_bool(body, "", "return_png", &r->return_png, e) < 0)
        goto fail;

    const json_t *ctx = json_object_get(body, "context");
    if (ctx && proto_decode_span(ctx, "context", lim, &r->context, e)) goto fail;
    if (r->task == PROTO_TASK_UNDERSTANDING) {
        if (json_object_get(body, "prompt")) {
            proto_rollout_free(r);
            return proto_fail(e, 400, "prompt", "prompt does not apply to understanding; use question");
        }
        if (json_object_get(body, "cfg_scale") || json_object_get(body, "return_png")) {
            proto_rollout_free(r);
            return proto_fail(e, 400, json_object_get(body, "cfg_scale") ? "cfg_scale" : "return_png",
                              "cfg_scale and return_png apply to generation only");
        }
        if (ctx && json_object_get(body, "question")) {
            proto_rollout_free(r);
            return proto_fail(e, 400, "question", "give either context or question, not both");
        }
        const char *q;
        size_t qn;
        int hq = proto_get_string(body, "", "question", lim->max_text_bytes, &q, &qn, e);
        if (hq < 0) goto fail;
        if (hq == 1) {
            if (!(r->question = proto_strdup(q, qn))) goto oom;
            r->question_len = qn;
        }
        if (!(x = json_object_get(body, "image"))) {
            if (!ctx) {
                proto_rollout_free(r);
                return proto_fail(e, 400, "image", "missing required field image");
            }
        } else if (proto_decode_image(x, "image", lim, true, &r->image, e)) {
            goto fail;
        }
    } else {
        if (json_object_get(body, "question") || json_object_get(body, "image")) {
            proto_rollout_free(r);
            const char *k = json_object_get(body, "question") ? "question" : "image";
            return proto_fail(e, 400, k, "%s does not apply to generation", k);
        }
        if (ctx && json_object_get(body, "prompt")) {
            proto_rollout_free(r);
            return proto_fail(e, 400, "prompt", "give either context or prompt, not both");
        }
        if (!ctx) {
            if (proto_require(body, "", "prompt", &x, e) < 0 || proto_decode_span(x, "prompt", lim, &r->prompt, e))
                goto fail;
        }
        if (r->score && r->prompt.kind == PROTO_SPAN_NONE) {
            proto_rollout_free(r);
            return proto_fail(e, 400, "score", "score needs the prompt (R_G scores the prompt), not a raw context");
        }
    }
    return 0;
oom:
    proto_fail(e, 500, NULL, "out of memory");
fail:
    proto_rollout_free(r);
    return -1;
}

void proto_rollout_free(struct proto_rollout_req *r) {
    proto_span_free(&r->context);
    proto_image_free(&r->image);
    free(r->question);
    proto_span_free(&r->prompt);
    memset(r, 0, sizeof *r);
}

/* ---------- POST /tokenize, /detokenize ---------- */

int proto_decode_tokenize(const json_t *body, const struct proto_limits *lim, struct proto_tokenize_req *r,
                          struct proto_error *e) {
    memset(r, 0, sizeof *r);
    static const char *const keys[] = {"text", "add_special", NULL};
    const json_t *x;
    const char *s;
    if (need_object(body, "", e) || proto_check_keys(body, "", keys, e) || proto_require(body, "", "text", &x, e) < 0 ||
        proto_get_string(body, "", "text", lim->max_text_bytes, &s, &r->text_len, e) < 0 ||
        proto_get_bool(body, "", "add_special", &r->add_special, e) < 0)
        return -1;
    if (!(r->text = proto_strdup(s, r->text_len))) return proto_fail(e, 500, NULL, "out of memory");
    return 0;
}

void proto_tokenize_free(struct proto_tokenize_req *r) {
    free(r->text);
    memset(r, 0, sizeof *r);
}

int proto_decode_detokenize(const json_t *body, const struct proto_limits *lim, struct proto_detokenize_req *r,
                            struct proto_error *e) {
    memset(r, 0, sizeof *r);
    static const char *const keys[] = {"tokens", "skip_special", "pieces", NULL};
    const json_t *x;
    if (need_object(body, "", e) || proto_check_keys(body, "", keys, e) ||
        proto_require(body, "", "tokens", &x, e) < 0 ||
        proto_get_bool(body, "", "skip_special", &r->skip_special, e) < 0 ||
        proto_get_bool(body, "", "pieces", &r->pieces, e) < 0)
        return -1;
    return proto_decode_ids(x, "tokens", lim->vocab_size, lim->max_span_tokens, "token ids", &r->tokens, &r->n_tokens, e);
}

void proto_detokenize_free(struct proto_detokenize_req *r) {
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

/* ---------- POST /openrlhf/reward ---------- */

static int string_array(const json_t *body, const char *key, size_t n_expected, const json_t **out,
                        struct proto_error *e) {
    if (proto_require(body, "", key, out, e) < 0) return -1;
    if (!json_is_array(*out)) return proto_fail(e, 400, key, "%s must be an array", key);
    if (json_array_size(*out) != n_expected)
        return proto_fail(e, 400, key, "%s has %zu entries; query has %zu", key, json_array_size(*out), n_expected);
    return 0;
}

/* One label string: a base64 PNG/JPEG, a data: URI of one, or a path under
 * --image-root.  A path cannot be base64 (it has a '.', as "a/b.png"). */
static int openrlhf_label_string(const json_t *l, const char *p, const struct proto_limits *lim,
                                 struct proto_image *out, struct proto_error *e) {
    const char *s = json_string_value(l);
    size_t n = json_string_length(l);
    if (strncmp(s, "data:", 5) == 0) {
        const char *comma = memchr(s, ',', n);
        if (!comma || comma - s < 12 || memcmp(comma - 7, ";base64", 7) != 0)
            return proto_fail(e, 400, p, "%s: a data: URI must be data:image/...;base64,...", p);
        return proto_decode_image_base64(comma + 1, n - (size_t)(comma + 1 - s), p, lim, out, e);
    }
    if (strchr(s, '.')) {
        json_t *wrap = json_pack("{s:O}", "path", l);
        int rc = wrap ? proto_decode_image(wrap, p, lim, true, out, e) : proto_fail(e, 500, p, "out of memory");
        json_decref(wrap);
        return rc;
    }
    return proto_decode_image_base64(s, n, p, lim, out, e);
}

/* labels[i]: a string, or OpenRLHF's image-column list holding one. */
static int openrlhf_label(const json_t *l, const char *p, const struct proto_limits *lim, struct proto_image *out,
                          struct proto_error *e) {
    if (json_is_array(l)) {
        if (json_array_size(l) != 1)
            return proto_fail(e, 400, p, "%s holds %zu images; R_U scores one image per response", p,
                              json_array_size(l));
        l = json_array_get(l, 0);
    }
    if (!json_is_string(l))
        return proto_fail(e, 400, p, "%s must be an image: base64 PNG/JPEG, a data: URI or a path", p);
    int rc = openrlhf_label_string(l, p, lim, out, e);
    /* the image decoders name "labels[i].png"/".path"; the field is labels[i] */
    if (rc) snprintf(e->param, sizeof e->param, "%s", p);
    return rc;
}

int proto_decode_openrlhf(const json_t *body, const struct proto_limits *lim, struct proto_openrlhf_req *r,
                          struct proto_error *e) {
    memset(r, 0, sizeof *r);
    const json_t *query, *prompts, *labels;
    /* OpenRLHF's remote reward request has exactly these three fields */
    static const char *const keys[] = {"query", "prompts", "labels", NULL};
    if (need_object(body, "", e) || proto_check_keys(body, "", keys, e) ||
        proto_require(body, "", "query", &query, e) < 0)
        return -1;
    if (!json_is_array(query)) return proto_fail(e, 400, "query", "query must be an array of strings");
    size_t n = json_array_size(query);
    if (n > (size_t)lim->max_items) return proto_fail(e, 400, "query", "query has %zu entries, over the limit of %d", n, lim->max_items);
    if (string_array(body, "prompts", n, &prompts, e) || string_array(body, "labels", n, &labels, e)) return -1;
    /* OpenRLHF splits a batch over its reward URLs: some get empty lists */
    if (n == 0) return 0;
    r->responses = calloc(n, sizeof *r->responses);
    r->response_lens = calloc(n, sizeof *r->response_lens);
    r->images = calloc(n, sizeof *r->images);
    r->no_prefix = calloc(n, sizeof *r->no_prefix);
    r->item_errors = calloc(n, sizeof *r->item_errors);
    r->n = (int)n;
    if (!r->responses || !r->response_lens || !r->images || !r->no_prefix || !r->item_errors) {
        proto_openrlhf_free(r);
        return proto_fail(e, 500, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char pq[PROTO_PARAM_MAX], pp[PROTO_PARAM_MAX], pl[PROTO_PARAM_MAX];
        proto_path_index(pq, sizeof pq, "query", (int)i);
        proto_path_index(pp, sizeof pp, "prompts", (int)i);
        proto_path_index(pl, sizeof pl, "labels", (int)i);
        const json_t *q = json_array_get(query, i), *p = json_array_get(prompts, i);
        const char *bad = !json_is_string(q) ? pq : !json_is_string(p) ? pp : NULL;
        if (bad) {
            proto_openrlhf_free(r);
            return proto_fail(e, 400, bad, "%s must be a string", bad);
        }
        size_t qn = json_string_length(q), pn = json_string_length(p);
        if (qn > lim->max_text_bytes) {
            proto_openrlhf_free(r);
            return proto_fail(e, 400, pq, "%s is over the limit of %zu bytes", pq, lim->max_text_bytes);
        }
        const char *qs = json_string_value(q);
        /* The response is what follows the prompt.  OpenRLHF re-decodes the
         * prompt's tokens, which need not give its text back byte for byte;
         * then the whole query is scored and the item is reported. */
        r->no_prefix[i] = !(pn <= qn && memcmp(qs, json_string_value(p), pn) == 0);
        size_t skip = r->no_prefix[i] ? 0 : pn;
        if (!(r->responses[i] = proto_strdup(qs + skip, qn - skip))) {
            proto_openrlhf_free(r);
            return proto_fail(e, 500, NULL, "out of memory");
        }
        r->response_lens[i] = qn - skip;
        /* a label that does not decode fails its item, not the batch */
        if (openrlhf_label(json_array_get(labels, i), pl, lim, &r->images[i], &r->item_errors[i]) == 0)
            r->item_errors[i].code = 0;
        else if (r->item_errors[i].code >= 500) {
            *e = r->item_errors[i];
            proto_openrlhf_free(r);
            return -1;
        }
    }
    return 0;
}

void proto_openrlhf_free(struct proto_openrlhf_req *r) {
    for (int i = 0; i < r->n; i++) {
        if (r->responses) free(r->responses[i]);
        if (r->images) proto_image_free(&r->images[i]);
    }
    free(r->responses);
    free(r->response_lens);
    free(r->images);
    free(r->no_prefix);
    free(r->item_errors);
    memset(r, 0, sizeof *r);
}
