/* Request bodies as dsrd decodes them, per route.  The input is
 * "<route>\n<body>" with route one of tokenize, detokenize, logprobs,
 * score, rollout, openrlhf, update, checkpoint, reload; the body is parsed
 * as dsrd does (duplicate keys refused) and decoded against the limits of
 * a small model.  Image paths are refused (no --image-root), so nothing
 * touches the file system.  A decode either succeeds with values
 * in their documented ranges or fails with a 4xx (500 only when out of
 * memory) whose error envelope encodes. */
#include <math.h>
#include <string.h>

#include "fuzz_targets.h"
#include "proto_request.h"
#include "proto_update.h"

static void limits(struct proto_limits *lim) {
    memset(lim, 0, sizeof *lim);
    lim->vocab_size = 320;
    lim->codebook_size = 256;
    lim->n_image_codes = 16;
    lim->max_items = 64;
    lim->max_span_tokens = 256;
    lim->max_text_bytes = 1 << 16;
    lim->max_group = 16;
    lim->max_new_tokens = 256;
    lim->max_png_bytes = 1 << 20;
    png_limits_default(&lim->png);
    lim->png.max_pixels = 1 << 18;
}

/* The param may echo a client's field name (any bytes); the envelope must
 * still encode (the log escapes it separately). */
static void check_error(const struct proto_error *e) {
    FUZZ_CHECK((e->code >= 400 && e->code < 500) || e->code == 500);
    FUZZ_CHECK(e->message[0]);
    json_t *env = proto_error_json(e);
    char *text = env ? json_dumps(env, JSON_COMPACT) : NULL;
    FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(env);
}

static void check_logprobs(const float *x, int n) {
    for (int i = 0; x && i < n; i++) FUZZ_CHECK(isfinite(x[i]) && x[i] <= 0);
}

static void check_update(const struct proto_update_req *r) {
    const struct adamw_hyper *a = &r->adam;
    FUZZ_CHECK(a->lr > 0 && a->lr <= 1 && a->eps > 0 && a->beta1 >= 0 && a->beta1 < 1 && a->beta2 >= 0 &&
               a->beta2 < 1 && isfinite(a->weight_decay) && (double)a->lr * a->weight_decay < 1 &&
               isfinite(a->max_grad_norm));
    FUZZ_CHECK(r->n_samples >= 1 && (!r->simpo || r->n_samples == 2 * r->n_pairs));
    for (int i = 0; i < r->n_samples; i++) {
        const struct proto_train_sample *s = &r->samples[i];
        FUZZ_CHECK(isfinite(s->advantage));
        if (!s->cited) check_logprobs(s->old_logprobs, s->n_completion);
        check_logprobs(s->ref_logprobs, s->n_ref);
    }
}

int fuzz_request(const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl) return 0;
    char route[16];
    size_t rl = (size_t)(nl - data);
    if (rl >= sizeof route) return 0;
    memcpy(route, data, rl);
    route[rl] = 0;
    json_error_t je;
    json_t *body = json_loadb((const char *)nl + 1, size - rl - 1, JSON_REJECT_DUPLICATES, &je);
    if (!body) return 0;
    struct proto_limits lim;
    limits(&lim);
    struct proto_error e = {0};
    int rc = 0;
    if (!strcmp(route, "tokenize")) {
        struct proto_tokenize_req r;
        if (!(rc = proto_decode_tokenize(body, &lim, &r, &e))) proto_tokenize_free(&r);
    } else if (!strcmp(route, "detokenize")) {
        struct proto_detokenize_req r;
        if (!(rc = proto_decode_detokenize(body, &lim, &r, &e))) {
            for (int i = 0; i < r.n_tokens; i++) FUZZ_CHECK(r.tokens[i] >= 0 && r.tokens[i] < lim.vocab_size);
            proto_detokenize_free(&r);
        }
    } else if (!strcmp(route, "logprobs")) {
        struct proto_logprobs_req r;
        if (!(rc = proto_decode_logprobs(body, &lim, &r, &e))) proto_logprobs_free(&r);
    } else if (!strcmp(route, "score")) {
        struct proto_score_req r;
        if (!(rc = proto_decode_score(body, &lim, &r, &e))) proto_score_free(&r);
    } else if (!strcmp(route, "rollout")) {
        struct proto_rollout_req r;
        if (!(rc = proto_decode_rollout(body, &lim, &r, &e))) {
            FUZZ_CHECK(r.n >= 1 && r.n <= lim.max_group && r.max_tokens >= 1 && r.top_p > 0 && r.top_p <= 1 &&
                       isfinite(r.temperature) && r.temperature >= 0 && isfinite(r.cfg_scale));
            proto_rollout_free(&r);
        }
    } else if (!strcmp(route, "openrlhf")) {
        struct proto_openrlhf_req r;
        if (!(rc = proto_decode_openrlhf(body, &lim, &r, &e))) proto_openrlhf_free(&r);
    } else if (!strcmp(route, "update")) {
        struct proto_update_req r;
        if (!(rc = proto_decode_update(body, &lim, &r, &e))) {
            check_update(&r);
            proto_update_free(&r);
        }
    } else if (!strcmp(route, "checkpoint")) {
        struct proto_checkpoint_req r;
        if (!(rc = proto_decode_checkpoint(body, &r, &e)))
            FUZZ_CHECK(r.name[0] && r.name[0] != '.' && !strchr(r.name, '/'));
    } else if (!strcmp(route, "reload")) {
        struct proto_reload_req r;
        rc = proto_decode_reload(body, &r, &e);
    }
    if (rc) check_error(&e);
    json_decref(body);
    return 0;
}

FUZZ_ENTRY(fuzz_request)
