#include "contexts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_usage_err(struct dsr_call_err *e, const char *msg) {
    memset(e, 0, sizeof *e);
    e->kind = DSR_CALL_PROTOCOL;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
}

/* First integer found under any of the given keys of obj. */
static int get_id(const json_t *obj, const char *const *keys, json_int_t *out) {
    for (; *keys; keys++) {
        const json_t *v = json_object_get(obj, *keys);
        if (json_is_integer(v)) {
            *out = json_integer_value(v);
            return 0;
        }
    }
    return -1;
}

static void get_template(const json_t *tpl, const char *key, char *dst) {
    const char *s = json_string_value(json_object_get(tpl, key));
    if (s && strlen(s) < CTX_TEMPLATE_MAX) memcpy(dst, s, strlen(s) + 1);
}

int ctx_templates_from_model(struct ctx_templates *t, const json_t *model, struct dsr_call_err *e) {
    memset(t, 0, sizeof *t);
    snprintf(t->user_prefix, sizeof t->user_prefix, "%s", "<|User|>: ");
    snprintf(t->assistant_suffix, sizeof t->assistant_suffix, "%s", "\n\n<|Assistant|>:");
    snprintf(t->question_prefix, sizeof t->question_prefix, "%s", "\n");
    const json_t *ids = json_object_get(model, "special_tokens");
    if (!json_is_object(ids)) ids = json_object_get(model, "special_token_ids");
    if (!json_is_object(ids)) ids = model;
    static const char *const bos[] = {"bos", "bos_token_id", NULL};
    static const char *const boi[] = {"boi", "boi_token_id", NULL};
    static const char *const eoi[] = {"eoi", "eoi_token_id", NULL};
    static const char *const img[] = {"image", "image_token_id", NULL};
    static const char *const nimg[] = {"num_image_tokens", "image_tokens", "n_image_tokens", NULL};
    if (get_id(ids, bos, &t->bos) || get_id(ids, boi, &t->boi) || get_id(ids, eoi, &t->eoi) ||
        get_id(ids, img, &t->image) || (get_id(model, nimg, &t->n_image_tokens) && get_id(ids, nimg, &t->n_image_tokens))) {
        set_usage_err(e, "GET /model lacks a special token id (bos, boi, eoi, image) or num_image_tokens");
        return -1;
    }
    if (t->n_image_tokens <= 0 || t->n_image_tokens > 65536) {
        set_usage_err(e, "GET /model: num_image_tokens out of range");
        return -1;
    }
    const json_t *tpl = json_object_get(model, "templates");
    if (json_is_object(tpl)) {
        get_template(tpl, "user_prefix", t->user_prefix);
        get_template(tpl, "assistant_suffix", t->assistant_suffix);
        get_template(tpl, "question_prefix", t->question_prefix);
    }
    return 0;
}

/* Appends tok(a + b + c) to arr. */
static int append_tokens(json_t *arr, const struct dsr_client *c, const char *a, const char *b, const char *cc,
                         struct dsr_call_err *e) {
    size_t n = strlen(a) + strlen(b) + strlen(cc) + 1;
    char *text = malloc(n);
    if (!text) {
        set_usage_err(e, "out of memory");
        return -1;
    }
    snprintf(text, n, "%s%s%s", a, b, cc);
    json_t *resp;
    int rc = dsr_tokenize(c, text, 0, &resp, e);
    free(text);
    if (rc != 0) return -1;
    const json_t *toks = json_object_get(resp, "tokens");
    if (!json_is_array(toks)) {
        json_decref(resp);
        set_usage_err(e, "/tokenize: response lacks \"tokens\"");
        return -1;
    }
    json_array_extend(arr, (json_t *)toks);
    json_decref(resp);
    return 0;
}

json_t *ctx_gen_tokens(const struct ctx_templates *t, const struct dsr_client *c, const char *prompt,
                       struct dsr_call_err *e) {
    json_t *arr = json_array();
    json_array_append_new(arr, json_integer(t->bos));
    if (append_tokens(arr, c, t->user_prefix, prompt, t->assistant_suffix, e) != 0) {
        json_decref(arr);
        return NULL;
    }
    json_array_append_new(arr, json_integer(t->boi));
    return arr;
}

json_t *ctx_und_tokens(const struct ctx_templates *t, const struct dsr_client *c, const char *question,
                       struct dsr_call_err *e) {
    json_t *arr = json_array();
    json_array_append_new(arr, json_integer(t->bos));
    if (append_tokens(arr, c, t->user_prefix, "", "", e) != 0) goto fail;
    json_array_append_new(arr, json_integer(t->boi));
    for (json_int_t i = 0; i < t->n_image_tokens; i++) json_array_append_new(arr, json_integer(t->image));
    json_array_append_new(arr, json_integer(t->eoi));
    if (append_tokens(arr, c, t->question_prefix, question, t->assistant_suffix, e) != 0) goto fail;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}
