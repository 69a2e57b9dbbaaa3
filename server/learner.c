#include "learner.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "train/checkpoint.h"
#include "proto_fields.h"

/* Training updates float32 weights: BF16-stored trainable tensors are
 * widened (once; the frozen ones stay BF16) and the model bound again. */
static int train_in_f32(struct janus_model *m, struct dsr_err *err) {
    if (!m->params.trainable_bf16) return 0;
    if (pt_promote_trainable(&m->params, err)) return -1;
    return janus_model_rebind(m, err);
}

int learner_state_init(struct learner_state *ts, struct janus_model *m, bool keep_reference, size_t memory_budget,
                       struct dsr_err *err) {
    memset(ts, 0, sizeof *ts);
    ts->memory_budget = memory_budget;
    if (!keep_reference) return 0;
    if (train_in_f32(m, err)) return -1;
    size_t n = m->params.n_trainable;
    if (!(ts->reference = malloc(n * sizeof(float) + 1)))
        return dsr_errf(err, "--reference: out of memory for a copy of %zu trainable weights", n);
    memcpy(ts->reference, m->params.trainable, n * sizeof(float));
    return 0;
}

void learner_state_free(struct learner_state *ts) {
    if (ts->active) trainer_free(&ts->tr);
    free(ts->reference);
    memset(ts, 0, sizeof *ts);
}

/* The cited rollout's data into t. */
static int resolve_cited(struct rollout_cache *cache, const struct update_sample *u, struct train_sample *t,
                         struct proto_error *e) {
    const struct rollout_entry *en = rollout_cache_get(cache, u->rollout_id);
    char p[PROTO_PARAM_MAX];
    proto_path(p, sizeof p, u->param, "rollout_id");
    if (!en)
        return proto_fail(e, 404, p, "%s: rollout %s is unknown or was evicted from the rollout cache "
                                     "(--rollout-cache); send the sample explicitly", p, u->rollout_id);
    if (u->ref_logprobs && u->n_ref != en->n) {
        proto_path(p, sizeof p, u->param, "ref_logprobs");
        return proto_fail(e, 400, p, "%s has %d values; rollout %s has %d completion tokens", p, u->n_ref,
                          u->rollout_id, en->n);
    }
    const struct rollout_shared *sh = en->shared;
    *t = (struct train_sample){.kind = sh->understanding ? TF_TARGET_TOKENS : TF_TARGET_CODES,
                               .context = sh->context, .n_context = sh->n_context,
                               .vision_features = sh->features, .n_feature_rows = sh->n_feature_rows,
                               .completion = en->completion, .n_completion = en->n, .advantage = u->advantage,
                               .old_logprobs = en->old_logprobs, .ref_logprobs = u->ref_logprobs};
    return 0;
}

/* Vision features of every explicit sample's image, in one batched pass;
 * *features owned by the caller. */
static int see_explicit(struct janus_runtime *rt, const struct update_request *rq, struct train_sample *s, float **features,
                        struct proto_error *e) {
    *features = NULL;
    int n_img = 0;
    for (int i = 0; i < rq->n_samples; i++) {
        const struct seen_image *see = &rq->samples[i].see;
        n_img += !rq->samples[i].rollout_id && (see->pixels || see->codes);
    }
    if (!n_img) return 0;
    const struct vision_config *v = &rt->model.cfg.vision;
    size_t per = (size_t)v->num_image_tokens * v->hidden_size;
    const struct seen_image **see = malloc((size_t)n_img * sizeof *see);
    *features = malloc((size_t)n_img * per * sizeof **features);
    if (!see || !*features) {
        free(see);
        return proto_fail(e, 500, NULL, "out of memory for the features of %d images", n_img);
    }
    for (int i = 0, k = 0; i < rq->n_samples; i++) {
        const struct update_sample *u = &rq->samples[i];
        if (u->rollout_id || !(u->see.pixels || u->see.codes)) continue;
        see[k] = &u->see;
        s[i].vision_features = *features + (size_t)k * per;
        s[i].n_feature_rows = v->num_image_tokens;
        k++;
    }
    struct dsr_err err = {{0}};
    int rc = engine_vision_features(rt, see, n_img, *features, &err);
    free(see);
    return rc ? proto_fail(e, 500, NULL, "vision tower: %s", err.msg) : 0;
}

/* β > 0 needs reference log-probs: given, or computed from kept weights. */
static int check_reference(const struct learner_state *ts, const struct update_request *rq, const struct train_sample *s,
                           struct proto_error *e) {
    if (rq->simpo || rq->grpo.beta <= 0) return 0;
    if (ts->reference || (ts->active && ts->tr.ref_weights)) return 0;
    for (int i = 0; i < rq->n_samples; i++)
        if (!s[i].ref_logprobs) {
            char p[PROTO_PARAM_MAX];
            proto_path(p, sizeof p, rq->samples[i].param, "ref_logprobs");
            return proto_fail(e, 400, p, "%s is required with hyper.beta > 0 unless dsrd runs with --reference "
                                         "(which keeps the initial weights as the KL reference)", p);
        }
    return 0;
}

static int ensure_trainer(struct janus_runtime *rt, struct learner_state *ts, struct proto_error *e) {
    if (ts->active) return 0;
    struct dsr_err err = {{0}};
    if (train_in_f32(&rt->model, &err) || trainer_init(&ts->tr, &rt->model, ts->memory_budget, &err))
        return proto_fail(e, 500, NULL, "%s", err.msg);
    ts->tr.ref_weights = ts->reference; /* the kept start-up weights move into the trainer */
    ts->reference = NULL;
    ts->active = true;
    return 0;
}

int learner_update(struct janus_runtime *rt, struct learner_state *ts, struct rollout_cache *cache,
                  const struct update_request *rq, struct train_stats *stats, struct proto_error *e) {
    memset(stats, 0, sizeof *stats);
    struct train_sample *s = calloc((size_t)rq->n_samples, sizeof *s);
    float *features = NULL;
    int rc = -1;
    if (!s) return proto_fail(e, 500, NULL, "out of memory for %d samples", rq->n_samples);
    for (int i = 0; i < rq->n_samples; i++) {
        const struct update_sample *u = &rq->samples[i];
        if (u->rollout_id) {
            if (resolve_cited(cache, u, &s[i], e)) goto out;
            continue;
        }
        s[i] = (struct train_sample){.kind = u->kind, .context = u->context, .n_context = u->n_context,
                                     .completion = u->completion, .n_completion = u->n_completion,
                                     .advantage = u->advantage, .old_logprobs = u->old_logprobs,
                                     .ref_logprobs = u->ref_logprobs};
    }
    if (see_explicit(rt, rq, s, &features, e) || check_reference(ts, rq, s, e) || ensure_trainer(rt, ts, e)) goto out;
    struct dsr_err err = {{0}};
    int brc;
    if (rq->simpo) {
        int n_pairs = rq->n_samples / 2;
        struct simpo_pair *pairs = malloc((size_t)n_pairs * sizeof *pairs);
        if (!pairs) {
            proto_fail(e, 500, NULL, "out of memory for %d pairs", n_pairs);
            goto out;
        }
        for (int k = 0; k < n_pairs; k++) pairs[k] = (struct simpo_pair){s[2 * k], s[2 * k + 1]};
        brc = trainer_simpo_backward(&ts->tr, &rt->model, pairs, n_pairs, &rq->simpo_h, stats, &err);
        free(pairs);
    } else {
        brc = trainer_grpo_backward(&ts->tr, &rt->model, s, rq->n_samples, &rq->grpo, stats, &err);
    }
    if (brc) {
        proto_fail(e, 500, NULL, "backward: %s", err.msg);
        goto out;
    }
    int src = trainer_step(&ts->tr, &rt->model, &rq->adam, stats, &err);
    if (src == TRAIN_NONFINITE) {
        /* deterministic for this request and these weights: retrying cannot help, so not a 5xx */
        proto_fail(e, 400, "hyper", "optimizer step: %s (samples and hyper-parameters overflow float32 together)",
                   err.msg);
        goto out;
    }
    if (src) {
        proto_fail(e, 500, NULL, "optimizer step: %s", err.msg);
        goto out;
    }
    ts->updates++;
    rc = 0;
out:
    free(s);
    free(features);
    return rc;
}

int learner_checkpoint(const struct janus_runtime *rt, const struct learner_state *ts, const char *dir, long policy_version,
                      const struct checkpoint_extra *extra, struct proto_error *e) {
    struct stat sb;
    if (lstat(dir, &sb) == 0)
        return proto_fail(e, 400, "name", "checkpoint %s already exists; checkpoints are never overwritten, choose "
                                          "a new name", dir);
    struct dsr_err err = {{0}};
    /* the runtime's in-memory source files (embedded model) travel as extras too */
    struct checkpoint_extra files[RUNTIME_MAX_SOURCE_FILES + 1];
    size_t n = 0;
    for (int i = 0; i < rt->n_source_files; i++) {
        const struct janus_source_file *f = &rt->source_files[i];
        files[n++] = (struct checkpoint_extra){f->name, f->text, f->len};
    }
    if (extra) files[n++] = *extra;
    if (checkpoint_write(&rt->model, ts->active ? &ts->tr : NULL, dir, policy_version, rt->model_dir,
                         rt->model_dir        ? rt->model_dir
                         : rt->builtin_shapes ? MODEL_BUILTIN_SHAPES
                                              : MODEL_BUILTIN_RANDOM,
                         files, n, &err))
        return proto_fail(e, 500, NULL, "%s", err.msg);
    return 0;
}

int learner_reload(struct janus_runtime *rt, struct learner_state *ts, const char *dir, long *policy_version,
                  struct proto_error *e) {
    struct dsr_err err = {{0}};
    if (checkpoint_load_weights(&rt->model, dir, policy_version, ts->active ? &ts->tr : NULL, &err))
        return proto_fail(e, 400, "path", "%s", err.msg);
    return 0;
}
