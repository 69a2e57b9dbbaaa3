/* Handlers of the state-changing routes: /update, /checkpoint, /reload
 * (admin key).  Decoding, tokenizing and image preprocessing happen here on
 * the HTTP thread; the model work is one compute-worker job each. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prepare.h"
#include "proto_fields.h"
#include "proto_response.h"
#include "proto_update.h"
#include "routes.h"

/* ---------- /update ---------- */

/* The engine's view of a decoded /update and the buffers behind it. */
struct update_prep {
    struct update_sample *samples;
    struct tok_ids *contexts;
    float **see_pixels;
    int n;
    struct update_request req;
};

static void update_prep_free(struct update_prep *p) {
    for (int i = 0; i < p->n; i++) {
        if (p->contexts) tok_ids_free(&p->contexts[i]);
        if (p->see_pixels) free(p->see_pixels[i]);
    }
    free(p->samples);
    free(p->contexts);
    free(p->see_pixels);
    memset(p, 0, sizeof *p);
}

static void sample_param(const struct proto_update_req *r, int i, char *out, size_t size) {
    if (!r->simpo) {
        proto_path_index(out, size, "samples", i);
        return;
    }
    char pair[PROTO_PARAM_MAX];
    proto_path_index(pair, sizeof pair, "pairs", i / 2);
    proto_path(out, size, pair, i % 2 ? "rejected" : "chosen");
}

/* An explicit sample: context templated by the caller, checked here. */
static int prep_explicit(const struct janus_runtime *rt, const struct proto_train_sample *ps, struct update_prep *p, int i,
                         struct proto_error *e) {
    struct update_sample *u = &p->samples[i];
    struct tok_ids *ctx = &p->contexts[i];
    bool und = ps->task == PROTO_TASK_UNDERSTANDING, has_image = ps->image.kind != PROTO_IMAGE_NONE;
    char pc[PROTO_PARAM_MAX], pi[PROTO_PARAM_MAX];
    proto_path(pc, sizeof pc, u->param, "context");
    proto_path(pi, sizeof pi, u->param, "image");
    if (prep_span_tokens(rt, &ps->context, pc, ctx, e) || prep_check_placeholders(rt, ctx->ids, ctx->n, has_image, pc, e))
        return -1;
    if (ctx->n == 0) return proto_fail(e, 400, pc, "%s tokenizes to nothing", pc);
    if (!und && ctx->ids[ctx->n - 1] != rt->ids.boi)
        return proto_fail(e, 400, pc, "%s: a generation context must end with BOI (id %d)", pc, rt->ids.boi);
    int max = rt->model.cfg.text.max_position_embeddings;
    if ((long)ctx->n + ps->n_completion > max)
        return proto_fail(e, 400, u->param, "%s: context (%zu) + completion (%d) exceeds the model's %d positions",
                          u->param, ctx->n, ps->n_completion, max);
    if (has_image && prep_see(rt, &ps->image, pi, &u->see, &p->see_pixels[i], e)) return -1;
    u->kind = und ? TF_TARGET_TOKENS : TF_TARGET_CODES;
    u->context = ctx->ids;
    u->n_context = (int)ctx->n;
    u->completion = ps->completion;
    u->n_completion = ps->n_completion;
    u->old_logprobs = ps->old_logprobs;
    return 0;
}

static int prep_update(const struct janus_runtime *rt, const struct proto_update_req *r, struct update_prep *p,
                       struct proto_error *e) {
    p->n = r->n_samples;
    p->samples = calloc((size_t)p->n, sizeof *p->samples);
    p->contexts = calloc((size_t)p->n, sizeof *p->contexts);
    p->see_pixels = calloc((size_t)p->n, sizeof *p->see_pixels);
    if (!p->samples || !p->contexts || !p->see_pixels) return proto_fail(e, 500, NULL, "out of memory");
    for (int i = 0; i < p->n; i++) {
        const struct proto_train_sample *ps = &r->samples[i];
        struct update_sample *u = &p->samples[i];
        sample_param(r, i, u->param, sizeof u->param);
        u->advantage = ps->advantage;
        u->ref_logprobs = ps->ref_logprobs;
        u->n_ref = ps->n_ref;
        if (ps->cited) u->rollout_id = ps->rollout_id;
        else if (prep_explicit(rt, ps, p, i, e)) return -1;
    }
    p->req = (struct update_request){.simpo = r->simpo, .samples = p->samples, .n_samples = p->n,
                                     .grpo = r->grpo, .simpo_h = r->simpo_h, .adam = r->adam};
    return 0;
}

/* Runs the update; on success out holds the response as JSON text (so an
 * idempotent replay can return the same bytes) and 0 is returned. */
static int apply_update(struct server *s, const struct proto_update_req *r, struct reply *out) {
    struct update_prep p = {0};
    struct proto_error e;
    int rc = -1;
    if (prep_update(&s->worker.rt, r, &p, &e)) {
        reply_error(out, &e);
    } else {
        struct job j = {.kind = JOB_UPDATE, .update = &p.req, .idem_key = r->has_key ? r->idempotency_key : NULL};
        if (worker_run(&s->worker, &j)) {
            reply_error(out, &j.error);
        } else if ((out->text = idem_update_response(&j.stats, &(struct proto_stamp){s->worker.rt.name,
                                                                                     j.policy_version}))) {
            /* the same text the worker recorded under the key */
            out->status = 200;
            out->content_type = "application/json";
            rc = 0;
        } else {
            reply_errorf(out, 500, NULL, "out of memory encoding the response (the update was applied)");
        }
    }
    update_prep_free(&p);
    return rc;
}

void route_update(struct server *s, const struct request *rq, struct reply *out) {
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct proto_update_req r;
    struct proto_error e;
    if (proto_decode_update(body, &s->worker.limits, &r, &e)) {
        reply_error(out, &e);
        json_decref(body);
        return;
    }
    char *replay = NULL;
    enum idem_claim claim = r.has_key ? idem_claim(&s->idem, r.idempotency_key, &replay) : IDEM_RUN;
    if (claim == IDEM_REPLAY) {
        if (replay) {
            out->status = 200;
            out->text = replay;
            out->content_type = "application/json";
        } else {
            reply_errorf(out, 500, NULL, "out of memory replaying the update's response");
        }
    } else if (claim == IDEM_FULL) {
        reply_errorf(out, 503, NULL, "all %d idempotency records belong to running updates; retry later",
                     s->cfg->idempotency_records);
    } else {
        /* on success the worker has recorded the response under the key */
        int rc = apply_update(s, &r, out);
        if (r.has_key && rc != 0) idem_abandon(&s->idem, r.idempotency_key);
    }
    proto_update_free(&r);
    json_decref(body);
}

/* ---------- /checkpoint, /reload ---------- */

static int need_checkpoint_dir(struct server *s, struct reply *out) {
    if (s->cfg->checkpoint_dir) return 0;
    reply_errorf(out, 400, NULL, "the server runs without --checkpoint-dir: checkpoints are disabled");
    return -1;
}

/* Answers {"path", "policy_version", "model"}. */
static void reply_path(struct server *s, struct reply *out, const char *path, long version) {
    reply_json(out, 200, json_pack("{s:s,s:I,s:s}", "path", path, "policy_version", (json_int_t)version, "model",
                                   s->worker.rt.name));
}

void route_checkpoint(struct server *s, const struct request *rq, struct reply *out) {
    if (need_checkpoint_dir(s, out)) return;
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct proto_checkpoint_req r;
    struct proto_error e;
    char dir[4096];
    if (proto_decode_checkpoint(body, &r, &e)) {
        reply_error(out, &e);
    } else if (mkdir(s->cfg->checkpoint_dir, 0755) != 0 && errno != EEXIST) {
        reply_errorf(out, 500, NULL, "cannot create --checkpoint-dir %s: %s", s->cfg->checkpoint_dir, strerror(errno));
    } else {
        snprintf(dir, sizeof dir, "%s/%s", s->cfg->checkpoint_dir, r.name);
        struct job j = {.kind = JOB_CHECKPOINT, .dir = dir};
        if (worker_run(&s->worker, &j)) reply_error(out, &j.error);
        else reply_path(s, out, dir, j.policy_version);
    }
    json_decref(body);
}

void route_reload(struct server *s, const struct request *rq, struct reply *out) {
    if (need_checkpoint_dir(s, out)) return;
    json_t *body = route_body(s, rq, out);
    if (!body) return;
    struct proto_reload_req r;
    struct proto_error e;
    char real[PATH_MAX];
    if (proto_decode_reload(body, &r, &e) ||
        prep_resolve_under(s->cfg->checkpoint_dir, "--checkpoint-dir", r.path, "path", real, &e)) {
        reply_error(out, &e);
    } else {
        struct job j = {.kind = JOB_RELOAD, .dir = real};
        if (worker_run(&s->worker, &j)) reply_error(out, &j.error);
        else reply_path(s, out, real, j.policy_version);
    }
    json_decref(body);
}
