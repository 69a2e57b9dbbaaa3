#include "proto_update.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_fields.h"
#include "proto_response.h"

/* Bounds that keep every number meaningful (and finite). */
#define MAX_ABS_ADVANTAGE 1e6
#define MAX_BETA 1e3
#define MAX_GRAD_NORM 1e9

/* A short identifier string (rollout id, idempotency key): printable ASCII. */
static int get_id(const json_t *obj, const char *path, const char *key, char *out, struct proto_error *e) {
    const char *s;
    size_t n;
    int has = proto_get_string(obj, path, key, PROTO_ID_MAX - 1, &s, &n, e);
    if (has <= 0) return has;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, key);
    if (n == 0) return proto_fail(e, 400, p, "%s is empty", p);
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 32 || s[i] >= 127) return proto_fail(e, 400, p, "%s must be printable ASCII without spaces", p);
    memcpy(out, s, n);
    out[n] = 0;
    return 1;
}

/* Log-probabilities: finite and <= 0, count fixed when want_n > 0. */
static int decode_logprobs(const json_t *v, const char *path, int want_n, int max_n, float **out, int *n_out,
                           struct proto_error *e) {
    *out = NULL;
    if (!json_is_array(v)) return proto_fail(e, 400, path, "%s must be an array of numbers", path);
    size_t n = json_array_size(v);
    if (want_n > 0 && n != (size_t)want_n)
        return proto_fail(e, 400, path, "%s has %zu values; the completion has %d", path, n, want_n);
    if (n == 0 || n > (size_t)max_n) return proto_fail(e, 400, path, "%s must have 1 to %d values", path, max_n);
    float *x = malloc(n * sizeof *x);
    if (!x) return proto_fail(e, 500, path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(v, i);
        double d = json_is_number(a) ? json_number_value(a) : NAN;
        /* stored as float32: -1e308 passes as a double but is -inf as a float */
        if (!proto_to_float(d, &x[i]) || d > 0) {
            char p[PROTO_PARAM_MAX];
            proto_path_index(p, sizeof p, path, (int)i);
            free(x);
            return proto_fail(e, 400, p, "%s must be a log-probability (a number <= 0) finite as a float32", p);
        }
    }
    *out = x;
    *n_out = (int)n;
    return 0;
}

static void sample_free(struct proto_train_sample *s) {
    proto_span_free(&s->context);
    proto_image_free(&s->image);
    free(s->completion);
    free(s->old_logprobs);
    free(s->ref_logprobs);
    memset(s, 0, sizeof *s);
}

static int decode_cited(const json_t *v, const char *path, const struct proto_limits *lim,
                        struct proto_train_sample *s, struct proto_error *e) {
    static const char *const keys[] = {"rollout_id", "advantage", "ref_logprobs", NULL};
    if (proto_check_keys(v, path, keys, e) || get_id(v, path, "rollout_id", s->rollout_id, e) < 0) return -1;
    s->cited = true;
    const json_t *ref = json_object_get(v, "ref_logprobs");
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, "ref_logprobs");
    if (ref && decode_logprobs(ref, p, 0, lim->max_span_tokens, &s->ref_logprobs, &s->n_ref, e)) return -1;
    return 0;
}

static int decode_explicit(const json_t *v, const char *path, const struct proto_limits *lim,
                           struct proto_train_sample *s, struct proto_error *e) {
    static const char *const keys[] = {"task",         "context",      "image", "completion", "advantage",
                                       "old_logprobs", "ref_logprobs", NULL};
    if (proto_check_keys(v, path, keys, e)) return -1;
    char p[PROTO_PARAM_MAX];
    const json_t *x;
    if (proto_require(v, path, "task", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "task");
    if (proto_decode_task(x, p, &s->task, e)) return -1;
    bool und = s->task == PROTO_TASK_UNDERSTANDING;
    if (proto_require(v, path, "context", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "context");
    if (proto_decode_span(x, p, lim, &s->context, e)) return -1;
    if ((x = json_object_get(v, "image"))) {
        proto_path(p, sizeof p, path, "image");
        if (!und) return proto_fail(e, 400, p, "%s does not apply to a generation sample", p);
        if (proto_decode_image(x, p, lim, true, &s->image, e)) return -1;
    }
    if (proto_require(v, path, "completion", &x, e) < 0) return -1;
    proto_path(p, sizeof p, path, "completion");
    const char *want = und ? "tokens" : "codes";
    if (!json_is_object(x) || json_object_size(x) != 1 || !json_object_get(x, want))
        return proto_fail(e, 400, p, "%s must be {\"%s\": [...]} for a%s sample", p, want,
                          und ? "n understanding" : " generation");
    char pc[PROTO_PARAM_MAX];
    proto_path(pc, sizeof pc, p, want);
    if (proto_decode_ids(json_object_get(x, want), pc, und ? lim->vocab_size : lim->codebook_size,
                         und ? lim->max_span_tokens : lim->n_image_codes, und ? "token ids" : "VQ codes",
                         &s->completion, &s->n_completion, e))
        return -1;
    const char *lp_keys[2] = {"old_logprobs", "ref_logprobs"};
    float **lp_out[2] = {&s->old_logprobs, &s->ref_logprobs};
    for (int k = 0; k < 2; k++) {
        if (!(x = json_object_get(v, lp_keys[k]))) continue;
        int n;
        proto_path(p, sizeof p, path, lp_keys[k]);
        if (decode_logprobs(x, p, s->n_completion, s->n_completion, lp_out[k], &n, e)) return -1;
        if (k == 1) s->n_ref = n;
    }
    return 0;
}

/* One sample of "samples" (GRPO: advantage required) or one side of a pair
 * (SimPO: advantage not used, old/ref log-probs validated and ignored). */
static int decode_sample(const json_t *v, const char *path, const struct proto_limits *lim, bool grpo,
                         struct proto_train_sample *s, struct proto_error *e) {
    if (!json_is_object(v)) return proto_fail(e, 400, path, "%s must be an object", path);
    int rc = json_object_get(v, "rollout_id") ? decode_cited(v, path, lim, s, e)
                                              : decode_explicit(v, path, lim, s, e);
    if (rc) return -1;
    int has = proto_get_float(v, path, "advantage", -MAX_ABS_ADVANTAGE, MAX_ABS_ADVANTAGE, false, &s->advantage, e);
    if (has < 0) return -1;
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, path, "advantage");
    if (grpo && !has) return proto_fail(e, 400, p, "missing required field %s", p);
    if (!grpo && has) return proto_fail(e, 400, p, "%s does not apply to simpo", p);
    return 0;
}

static int decode_loss_type(const json_t *h, enum grpo_loss_type *out, struct proto_error *e) {
    const char *s;
    size_t n;
    int has = proto_get_string(h, "hyper", "loss_type", 16, &s, &n, e);
    if (has <= 0) return has;
    static const struct {
        const char *name;
        enum grpo_loss_type t;
    } types[] = {{"grpo", GRPO_LOSS_GRPO}, {"dapo", GRPO_LOSS_DAPO}, {"bnpo", GRPO_LOSS_BNPO}, {"dr_grpo", GRPO_LOSS_DR_GRPO}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].t;
            return 1;
        }
    return proto_fail(e, 400, "hyper.loss_type", "hyper.loss_type must be grpo, dapo, bnpo or dr_grpo");
}

/* A member of "hyper" into a float, range-checked as a float (closed
 * range; lo excluded when lo_open). */
static int get_float(const json_t *h, const char *key, double lo, double hi, bool lo_open, float *out,
                     struct proto_error *e) {
    return proto_get_float(h, "hyper", key, lo, hi, lo_open, out, e) < 0 ? -1 : 0;
}

/* One of "adam_betas": in [0, 1) as a float (0.99999999999 is 1.0f, which
 * zeroes AdamW's bias correction). */
static int get_beta(const json_t *b, size_t i, float *out, struct proto_error *e) {
    const json_t *x = json_array_get(b, i);
    char p[PROTO_PARAM_MAX];
    proto_path_index(p, sizeof p, "hyper.adam_betas", (int)i);
    if (!proto_to_float(json_number_value(x), out) || !(*out >= 0 && *out < 1))
        return proto_fail(e, 400, "hyper.adam_betas", "%s = %.17g is outside [0, 1) as a float32", p,
                          json_number_value(x));
    return 0;
}

static int decode_hyper(const json_t *body, const struct proto_limits *lim, struct proto_update_req *r,
                        struct proto_error *e) {
    r->grpo = (struct grpo_hyper){.epsilon = 0.2f, .epsilon_high = 0.28f, .beta = 0.0f, .loss_type = GRPO_LOSS_GRPO};
    r->simpo_h = (struct simpo_hyper){.beta = 2.0f, .gamma = 1.0f};
    r->adam = (struct adamw_hyper){.lr = 1e-6f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f,
                                   .max_grad_norm = 1.0f};
    const json_t *h = json_object_get(body, "hyper");
    if (!h) return 0;
    if (!json_is_object(h)) return proto_fail(e, 400, "hyper", "hyper must be an object");
    static const char *const grpo_keys[] = {"epsilon", "epsilon_high", "beta", "loss_type", "max_completion_length",
                                            "lr", "weight_decay", "max_grad_norm", "adam_betas", "adam_eps", NULL};
    static const char *const simpo_keys[] = {"beta", "gamma", "lr", "weight_decay", "max_grad_norm", "adam_betas",
                                             "adam_eps", NULL};
    if (proto_check_keys(h, "hyper", r->simpo ? simpo_keys : grpo_keys, e)) return -1;
    if (r->simpo) {
        if (get_float(h, "beta", 0.0, MAX_BETA, false, &r->simpo_h.beta, e) ||
            get_float(h, "gamma", -1e3, 1e3, false, &r->simpo_h.gamma, e))
            return -1;
    } else {
        long long mcl = 0;
        if (get_float(h, "epsilon", 0.0, 1.0, false, &r->grpo.epsilon, e) ||
            get_float(h, "epsilon_high", 0.0, 100.0, false, &r->grpo.epsilon_high, e) ||
            get_float(h, "beta", 0.0, MAX_BETA, false, &r->grpo.beta, e) || decode_loss_type(h, &r->grpo.loss_type, e) < 0 ||
            proto_get_int(h, "hyper", "max_completion_length", 1, lim->max_span_tokens, &mcl, e) < 0)
            return -1;
        r->grpo.max_completion_length = (int)mcl;
    }
    /* lr and eps > 0: eps 0 divides 0 by 0 where a gradient is 0 */
    if (get_float(h, "lr", 0.0, 1.0, true, &r->adam.lr, e) ||
        get_float(h, "weight_decay", 0.0, 1e3, false, &r->adam.weight_decay, e) ||
        get_float(h, "max_grad_norm", 0.0, MAX_GRAD_NORM, false, &r->adam.max_grad_norm, e) ||
        get_float(h, "adam_eps", 0.0, 1.0, true, &r->adam.eps, e))
        return -1;
    /* decoupled decay multiplies the weights by 1 - lr·wd: at or below 0 it
     * flips or erases them */
    if ((double)r->adam.lr * r->adam.weight_decay >= 1.0)
        return proto_fail(e, 400, "hyper.weight_decay", "hyper.weight_decay (%g) times hyper.lr (%g) must be below 1",
                          (double)r->adam.weight_decay, (double)r->adam.lr);
    const json_t *b = json_object_get(h, "adam_betas");
    if (b) {
        if (!json_is_array(b) || json_array_size(b) != 2 || !json_is_number(json_array_get(b, 0)) ||
            !json_is_number(json_array_get(b, 1)))
            return proto_fail(e, 400, "hyper.adam_betas", "hyper.adam_betas must be two numbers");
        if (get_beta(b, 0, &r->adam.beta1, e) || get_beta(b, 1, &r->adam.beta2, e)) return -1;
    }
    return 0;
}

/* The "samples" (GRPO) or "pairs" (SimPO) array. */
static int decode_units(const json_t *body, const struct proto_limits *lim, struct proto_update_req *r,
                        struct proto_error *e) {
    const char *key = r->simpo ? "pairs" : "samples";
    const json_t *a;
    if (proto_require(body, "", key, &a, e) < 0) return -1;
    if (!json_is_array(a)) return proto_fail(e, 400, key, "%s must be an array", key);
    size_t n = json_array_size(a);
    if (n == 0) return proto_fail(e, 400, key, "%s is empty", key);
    if (n > (size_t)lim->max_items) return proto_fail(e, 400, key, "%s has %zu entries, over the limit of %d", key, n, lim->max_items);
    size_t per = r->simpo ? 2 : 1;
    if (!(r->samples = calloc(n * per, sizeof *r->samples))) return proto_fail(e, 500, key, "out of memory");
    r->n_samples = (int)(n * per);
    r->n_pairs = r->simpo ? (int)n : 0;
    for (size_t i = 0; i < n; i++) {
        char p[PROTO_PARAM_MAX];
        proto_path_index(p, sizeof p, key, (int)i);
        const json_t *v = json_array_get(a, i);
        if (!r->simpo) {
            if (decode_sample(v, p, lim, true, &r->samples[i], e)) return -1;
            continue;
        }
        static const char *const pair_keys[] = {"chosen", "rejected", NULL};
        if (!json_is_object(v)) return proto_fail(e, 400, p, "%s must be an object", p);
        if (proto_check_keys(v, p, pair_keys, e)) return -1;
        for (int side = 0; side < 2; side++) {
            const char *k = side ? "rejected" : "chosen";
            const json_t *x;
            char ps[PROTO_PARAM_MAX];
            if (proto_require(v, p, k, &x, e) < 0) return -1;
            proto_path(ps, sizeof ps, p, k);
            if (decode_sample(x, ps, lim, false, &r->samples[2 * i + side], e)) return -1;
        }
    }
    return 0;
}

int proto_decode_update(const json_t *body, const struct proto_limits *lim, struct proto_update_req *r,
                        struct proto_error *e) {
    memset(r, 0, sizeof *r);
    static const char *const keys[] = {"algorithm", "idempotency_key", "samples", "pairs", "hyper", NULL};
    if (!json_is_object(body)) return proto_fail(e, 400, NULL, "the body must be an object");
    if (proto_check_keys(body, "", keys, e)) return -1;
    const char *alg = "grpo";
    size_t n;
    if (proto_get_string(body, "", "algorithm", 16, &alg, &n, e) < 0) return -1;
    if (strcmp(alg, "grpo") == 0) r->simpo = false;
    else if (strcmp(alg, "simpo") == 0) r->simpo = true;
    else return proto_fail(e, 400, "algorithm", "algorithm must be \"grpo\" or \"simpo\"");
    const char *other = r->simpo ? "samples" : "pairs";
    if (json_object_get(body, other))
        return proto_fail(e, 400, other, "%s does not apply to %s", other, r->simpo ? "simpo" : "grpo");
    int has = get_id(body, "", "idempotency_key", r->idempotency_key, e);
    if (has < 0) return -1;
    r->has_key = has == 1;
    if (decode_hyper(body, lim, r, e) == 0 && decode_units(body, lim, r, e) == 0) return 0;
    proto_update_free(r);
    return -1;
}

void proto_update_free(struct proto_update_req *r) {
    for (int i = 0; r->samples && i < r->n_samples; i++) sample_free(&r->samples[i]);
    free(r->samples);
    memset(r, 0, sizeof *r);
}

int proto_decode_checkpoint(const json_t *body, struct proto_checkpoint_req *r, struct proto_error *e) {
    memset(r, 0, sizeof *r);
    static const char *const keys[] = {"name", NULL};
    const json_t *x;
    const char *s;
    size_t n;
    if (!json_is_object(body)) return proto_fail(e, 400, NULL, "the body must be an object");
    if (proto_check_keys(body, "", keys, e) || proto_require(body, "", "name", &x, e) < 0 ||
        proto_get_string(body, "", "name", PROTO_ID_MAX - 1, &s, &n, e) < 0)
        return -1;
    if (n == 0 || s[0] == '.')
        return proto_fail(e, 400, "name", "name must be non-empty and must not start with '.'");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
        if (!ok)
            return proto_fail(e, 400, "name", "name must be one path component of letters, digits, '-', '_' or '.'");
    }
    memcpy(r->name, s, n);
    return 0;
}

int proto_decode_reload(const json_t *body, struct proto_reload_req *r, struct proto_error *e) {
    memset(r, 0, sizeof *r);
    static const char *const keys[] = {"path", NULL};
    const json_t *x;
    const char *s;
    size_t n;
    if (!json_is_object(body)) return proto_fail(e, 400, NULL, "the body must be an object");
    if (proto_check_keys(body, "", keys, e) || proto_require(body, "", "path", &x, e) < 0 ||
        proto_get_string(body, "", "path", sizeof r->path - 1, &s, &n, e) < 0)
        return -1;
    memcpy(r->path, s, n);
    return 0;
}

json_t *proto_encode_update(const struct train_stats *st, const struct proto_stamp *stamp) {
    json_t *o = json_object();
    if (!o) return NULL;
    if (json_object_set_new(o, "loss", proto_real(st->loss)) ||
        json_object_set_new(o, "grad_norm", proto_real(st->grad_norm)) ||
        json_object_set_new(o, "clip_fraction", proto_real(st->clip_fraction)) ||
        json_object_set_new(o, "kl", proto_real(st->kl)) || json_object_set_new(o, "tokens", json_integer(st->tokens)) ||
        json_object_set_new(o, "policy_version", json_integer(stamp->policy_version)) ||
        json_object_set_new(o, "model", json_string(stamp->model))) {
        json_decref(o);
        return NULL;
    }
    return o;
}
