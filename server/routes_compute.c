/* Handlers that need the model: /logprobs, /score, /openrlhf/reward,
 * /rollout. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "image/png_io.h"
#include "janus/reward.h"
#include "prepare.h"
#include "proto_fields.h"
#include "proto_response.h"
#include "routes.h"

/* Runs n prepared items as one scoring job; 0 with *version set, or -1
 * with out filled. */
static int run_items(struct server *s, struct prepared_item *items, int n, long *version, struct reply *out) {
    struct score_request **reqs = malloc((size_t)n * sizeof *reqs);
    if (!reqs) {
        reply_errorf(out, 500, NULL, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) reqs[i] = &items[i].req;
    struct job j = {.kind = JOB_SCORE, .score = reqs, .n_score = n};
    int rc = worker_run(&s->worker, &j);
    free(reqs);
    if (rc) {
        reply_error(out, &j.error);
        return -1;
    }
    *version = j.policy_version;
    return 0;
}

static struct prepared_item *new_items(int n, struct reply *out) {
    struct prepared_item *p = calloc((size_t)n, sizeof *p);
    if (!p) reply_errorf(out, 500, NULL, "out of memory");
    return p;
}

static void free_items(struct prepared_item *p, int n) {
    for (int i = 0; p && i < n; i++) prepared_item_free(&p[i]);
    free(p);
}

static struct proto_lp_result *lp_results(const struct prepared_item *p, int n, bool with_codes) {
    struct proto_lp_result *r = calloc((size_t)n, sizeof *r);
    for (int i = 0; r && i < n; i++)
        r[i] = (struct proto_lp_result){p[i].logprobs, p[i].req.n_target,
                                        with_codes && p[i].req.kind == TF_TARGET_CODES ? p[i].target : NULL};
    return r;
}

void route_logprobs(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct janus_runtime *rt = &s->worker.rt;
    struct proto_logprobs_req r;
    struct proto_error e;
    struct prepared_item *items = NULL;
    long version;
    if (proto_decode_logprobs(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
        goto done;
    }
    if (!(items = new_items(r.n_items, out))) goto free_req;
    for (int i = 0; i < r.n_items; i++) {
        char p[PROTO_PARAM_MAX];
        proto_path_index(p, sizeof p, "items", i);
        if (prep_logprobs_item(rt, &r.items[i], p, &items[i], &e)) {
            reply_error(out, &e);
            goto free_req;
        }
    }
    if (run_items(s, items, r.n_items, &version, out) == 0) {
        struct proto_lp_result *res = lp_results(items, r.n_items, true);
        struct proto_stamp st = {rt->name, version};
        reply_json(out, 200, res ? proto_encode_logprobs(res, r.n_items, &st) : NULL);
        free(res);
    }
free_req:
    free_items(items, r.n_items);
    proto_logprobs_free(&r);
done:
    json_decref(body);
}

void route_score(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct janus_runtime *rt = &s->worker.rt;
    struct proto_score_req r;
    struct proto_error e;
    struct prepared_item *items = NULL;
    long version;
    if (proto_decode_score(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
        goto done;
    }
    if (!(items = new_items(r.n_items, out))) goto free_req;
    for (int i = 0; i < r.n_items; i++) {
        const struct proto_score_item *it = &r.items[i];
        char p[PROTO_PARAM_MAX], pt[PROTO_PARAM_MAX];
        proto_path_index(p, sizeof p, "items", i);
        proto_path(pt, sizeof pt, p, it->task == PROTO_TASK_UNDERSTANDING ? "response" : "prompt");
        char *text = NULL;
        size_t len = 0;
        int rc;
        /* a response given as ids is scored from its ids (as a rollout's R_U is) */
        if (it->task == PROTO_TASK_UNDERSTANDING && it->text.kind == PROTO_SPAN_TOKENS)
            rc = prep_understanding_reward_ids(rt, &it->image, it->text.tokens, it->text.n_tokens, p, &items[i], &e);
        else if ((rc = prep_span_text(rt, &it->text, pt, &text, &len, &e)) == 0)
            rc = it->task == PROTO_TASK_UNDERSTANDING
                     ? prep_understanding_reward(rt, &it->image, text, len, p, &items[i], &e)
                     : prep_generation_reward(rt, &it->image, text, len, p, &items[i], &e);
        free(text);
        if (rc) {
            reply_error(out, &e);
            goto free_req;
        }
    }
    if (run_items(s, items, r.n_items, &version, out) == 0) {
        struct proto_lp_result *res = lp_results(items, r.n_items, false);
        struct proto_stamp st = {rt->name, version};
        reply_json(out, 200, res ? proto_encode_score(res, r.n_items, r.token_logprobs, &st) : NULL);
        free(res);
    }
free_req:
    free_items(items, r.n_items);
    proto_score_free(&r);
done:
    json_decref(body);
}

void route_openrlhf(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct janus_runtime *rt = &s->worker.rt;
    struct proto_openrlhf_req r;
    struct proto_error e;
    struct prepared_item *items = NULL;
    struct proto_openrlhf_item *res = NULL;
    long version = atomic_load(&s->worker.policy_version);
    if (proto_decode_openrlhf(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
        goto done;
    }
    if (r.n && (!(items = new_items(r.n, out)) || !(res = calloc((size_t)r.n, sizeof *res)))) {
        if (items) reply_errorf(out, 500, NULL, "out of memory");
        goto free_req;
    }
    /* Items that cannot be scored get a null reward and a reason; the rest
     * go to the worker as one batch, in order. */
    int n_ok = 0;
    for (int i = 0; i < r.n; i++) {
        res[i].no_prefix = r.no_prefix[i];
        if (r.item_errors[i].code) {
            res[i].error = &r.item_errors[i];
            continue;
        }
        /* HF's decode(skip_special_tokens=False) leaves EOS (and padding)
         * text after the response; it is not caption text */
        size_t len = r.response_lens[i], cut;
        while ((cut = tokenizer_special_suffix(rt->tok, r.responses[i], len)) > 0) {
            len -= cut;
            res[i].specials_stripped++;
        }
        char p[PROTO_PARAM_MAX];
        proto_path_index(p, sizeof p, "query", i);
        if (prep_understanding_reward(rt, &r.images[i], r.responses[i], len, p, &items[n_ok], &r.item_errors[i])) {
            if (strstr(r.item_errors[i].param, ".image")) proto_path_index(r.item_errors[i].param, PROTO_PARAM_MAX, "labels", i);
            if (r.item_errors[i].code >= 500) {
                reply_error(out, &r.item_errors[i]);
                goto free_req;
            }
            prepared_item_free(&items[n_ok]);
            res[i].error = &r.item_errors[i];
            continue;
        }
        n_ok++;
    }
    if (n_ok && run_items(s, items, n_ok, &version, out)) goto free_req;
    for (int i = 0, k = 0; i < r.n; i++) {
        if (res[i].error) continue;
        res[i].reward = reward_of(items[k].logprobs, items[k].req.n_target).reward;
        k++;
    }
    struct proto_stamp st = {rt->name, version};
    reply_json(out, 200, proto_encode_openrlhf(res, r.n, &st));
free_req:
    free(res);
    free_items(items, r.n);
    proto_openrlhf_free(&r);
done:
    json_decref(body);
}

/* ---------- /rollout ---------- */

struct rollout_prep {
    struct tok_ids context, rg_context, rg_target;
    float *see_pixels, *vq_pixels;
    struct rollout_request req;
};

static void rollout_prep_free(struct rollout_prep *p) {
    tok_ids_free(&p->context);
    tok_ids_free(&p->rg_context);
    tok_ids_free(&p->rg_target);
    free(p->see_pixels);
    free(p->vq_pixels);
}

static int prep_rollout(struct server *s, const struct proto_rollout_req *r, struct rollout_prep *p,
                        struct proto_error *e) {
    const struct janus_runtime *rt = &s->worker.rt;
    struct rollout_request *q = &p->req;
    struct dsr_err err = {{0}};
    q->understanding = r->task == PROTO_TASK_UNDERSTANDING;
    q->n = r->n;
    q->max_tokens = r->max_tokens;
    q->cfg_scale = r->cfg_scale;
    q->sp = (struct sampling_params){
        .temperature = r->temperature,
        .top_k = r->top_k,
        .top_p = r->top_p,
        .seed = r->has_seed ? r->seed : atomic_fetch_add(&s->seed_counter, 0x9E3779B97F4A7C15ull),
        .kv_dtype = s->cfg->kv_dtype};
    q->score = r->score;
    q->decode_pixels = r->return_png;
    bool has_image = r->image.kind != PROTO_IMAGE_NONE;
    if (r->context.kind != PROTO_SPAN_NONE) {
        if (prep_span_tokens(rt, &r->context, "context", &p->context, e) ||
            (q->understanding && prep_check_placeholders(rt, p->context.ids, p->context.n, has_image, "context", e)))
            return -1;
        if (!q->understanding && p->context.ids[p->context.n - 1] != rt->ids.boi)
            return proto_fail(e, 400, "context", "a generation context must end with BOI (id %d)", rt->ids.boi);
    } else if (q->understanding) {
        if (janus_und_context(rt->tok, &rt->tpl, &rt->ids, r->question, r->question_len, &p->context, NULL, &err))
            return proto_fail(e, 400, "question", "question: %s", err.msg);
    } else {
        char *text = NULL;
        size_t len = 0;
        if (prep_span_text(rt, &r->prompt, "prompt", &text, &len, e)) return -1;
        int rc = janus_gen_context(rt->tok, &rt->tpl, &rt->ids, text, len, &p->context, &err);
        if (rc == 0 && r->score) rc = janus_und_context(rt->tok, &rt->tpl, &rt->ids, NULL, 0, &p->rg_context, NULL, &err);
        if (rc == 0 && r->score) rc = janus_rg_target(rt->tok, &rt->tpl, text, len, &p->rg_target, &err);
        free(text);
        if (rc) return proto_fail(e, 400, "prompt", "prompt: %s", err.msg);
        if (r->score && p->rg_target.n == 0) return proto_fail(e, 400, "prompt", "the prompt tokenizes to nothing");
        q->rg_context = p->rg_context.ids;
        q->n_rg_context = (int)p->rg_context.n;
        q->rg_target = p->rg_target.ids;
        q->n_rg_target = (int)p->rg_target.n;
    }
    q->context = p->context.ids;
    q->n_context = (int)p->context.n;
    int generated = q->understanding ? q->max_tokens : rt->n_codes;
    if ((long)q->n_context + generated > rt->model.cfg.text.max_position_embeddings)
        return proto_fail(e, 400, q->understanding ? "max_tokens" : "prompt",
                          "context (%d) + %d generated exceeds the model's %d positions", q->n_context, generated,
                          rt->model.cfg.text.max_position_embeddings);
    if (q->understanding && has_image) {
        if (prep_see(rt, &r->image, "image", &q->see, &p->see_pixels, e)) return -1;
        if (r->score && r->image.kind == PROTO_IMAGE_RGB) {
            if (prep_vq_pixels(rt, &r->image, "image", &p->vq_pixels, e)) return -1;
            q->vq_pixels = p->vq_pixels;
        }
    }
    if (q->understanding && q->score && !has_image)
        return proto_fail(e, 400, "score", "score needs the image (R_U scores the image's codes)");
    return 0;
}

/* Encodes the decoded pixels of rollout g as base64 PNG. */
static char *png_b64(const struct janus_runtime *rt, const float *pixels, struct dsr_err *err) {
    int S = rt->vq_size;
    uint8_t *hwc = malloc((size_t)S * S * 3);
    if (!hwc) return NULL;
    janus_image_postprocess(&rt->vq_img, pixels, hwc);
    uint8_t *png = NULL;
    size_t n = 0;
    char *b64 = NULL;
    if (png_encode_rgb8(hwc, S, S, &png, &n, err) == 0) b64 = base64_encode(png, n);
    free(hwc);
    free(png);
    return b64;
}

static json_t *encode_rollouts(const struct janus_runtime *rt, const struct rollout_request *q,
                               const struct rollout_output *o, char (*ids)[ROLLOUT_ID_LEN], long version) {
    struct proto_rollout_result *res = calloc((size_t)q->n, sizeof *res);
    char **texts = calloc((size_t)q->n, sizeof *texts);
    json_t *j = NULL;
    struct dsr_err err = {{0}};
    if (!res || !texts) goto out;
    size_t px = (size_t)3 * rt->vq_size * rt->vq_size;
    for (int g = 0; g < q->n; g++) {
        struct proto_rollout_result *x = &res[g];
        x->id = ids[g];
        x->has_reward = q->score;
        x->reward = o->rewards[g];
        if (q->understanding) {
            x->ids = o->text.tokens + (size_t)g * q->max_tokens;
            x->logprobs = o->text.logprobs + (size_t)g * q->max_tokens;
            x->n_ids = o->text.lengths[g];
            if (janus_runtime_decode_text(rt, x->ids, x->n_ids, &texts[g], NULL, &err)) goto out;
            x->text = texts[g];
        } else {
            x->ids = o->image.codes + (size_t)g * rt->n_codes;
            x->logprobs = o->image.logprobs + (size_t)g * rt->n_codes;
            x->n_ids = rt->n_codes;
            if (q->decode_pixels && !(texts[g] = png_b64(rt, o->pixels + g * px, &err))) goto out;
            x->png_b64 = texts[g];
        }
    }
    struct proto_stamp st = {rt->name, version};
    struct proto_rollout_contexts ctx = {q->context, q->n_context, q->rg_context, q->rg_target,
                                         q->score && !q->understanding ? q->n_rg_context : 0,
                                         q->score && !q->understanding ? q->n_rg_target : 0};
    j = proto_encode_rollout(q->understanding ? PROTO_TASK_UNDERSTANDING : PROTO_TASK_GENERATION, res, q->n, &ctx, &st);
out:
    for (int g = 0; texts && g < q->n; g++) free(texts[g]);
    free(texts);
    free(res);
    return j;
}

void route_rollout(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct proto_rollout_req r;
    struct proto_error e;
    struct rollout_prep p = {0};
    if (proto_decode_rollout(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
        json_decref(body);
        return;
    }
    if (prep_rollout(s, &r, &p, &e)) {
        reply_error(out, &e);
    } else {
        struct rollout_output o = {0};
        char(*ids)[ROLLOUT_ID_LEN] = calloc((size_t)p.req.n, sizeof *ids);
        struct job j = {.kind = JOB_ROLLOUT, .rollout = &p.req, .rollout_out = &o, .rollout_ids = ids};
        if (!ids) {
            proto_fail(&e, 500, NULL, "out of memory for %d rollout ids", p.req.n);
            reply_error(out, &e);
        } else if (worker_run(&s->worker, &j)) {
            reply_error(out, &j.error);
        } else {
            reply_json(out, 200, encode_rollouts(&s->worker.rt, &p.req, &o, ids, j.policy_version));
        }
        rollout_output_free(&o);
        free(ids);
    }
    rollout_prep_free(&p);
    proto_rollout_free(&r);
    json_decref(body);
}
