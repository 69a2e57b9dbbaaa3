#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__GLIBC__) /* set by the libc headers above */
#include <malloc.h>
#endif

#include "prepare.h"

#include "nn/ops.h"
#include "train/adapter.h"
#include "train/checkpoint.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static enum metric_job metric_kind(enum job_kind k) {
    switch (k) {
    case JOB_SCORE: return MJ_SCORE;
    case JOB_ROLLOUT: return MJ_ROLLOUT;
    case JOB_UPDATE: return MJ_UPDATE;
    case JOB_CHECKPOINT: return MJ_CHECKPOINT;
    case JOB_RELOAD: return MJ_RELOAD;
    }
    return MJ_SCORE;
}

static int job_rows(const struct job *j) {
    int rows = 0;
    for (int i = 0; i < j->n_score; i++) rows += j->score[i]->n_context + j->score[i]->n_target;
    return rows;
}

static void fail_job(struct job *j, const struct dsr_err *err) {
    proto_fail(&j->error, 500, NULL, "%s", err->msg);
}

/* One engine_score over every item of the batch; if it fails, each job
 * runs alone so one bad request cannot fail the others. */
static void run_score_batch(struct worker *w, struct job **batch, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) total += batch[i]->n_score;
    struct score_request **all = malloc((size_t)total * sizeof *all);
    struct dsr_err err = {{0}};
    int rc = -1;
    if (all) {
        int k = 0;
        for (int i = 0; i < n; i++)
            for (int s = 0; s < batch[i]->n_score; s++) all[k++] = batch[i]->score[s];
        rc = engine_score(&w->rt, all, total, &err);
        free(all);
    }
    if (rc == 0 || n == 1) {
        for (int i = 0; i < n; i++)
            if (rc) fail_job(batch[i], &err);
    } else {
        for (int i = 0; i < n; i++)
            if (engine_score(&w->rt, batch[i]->score, batch[i]->n_score, &err)) fail_job(batch[i], &err);
    }
    unsigned long scored = 0;
    for (int i = 0; i < n; i++)
        for (int s = 0; s < batch[i]->n_score; s++) scored += (unsigned long)batch[i]->score[s]->n_target;
    metrics_add(w->metrics, MC_TOKENS_SCORED, scored);
    metrics_add(w->metrics, MC_SCORE_BATCHES, 1);
    metrics_add(w->metrics, MC_SCORE_JOBS, (unsigned long)n);
}

/* Remembers a group's rollouts for /update: each sample's tokens and
 * sampling log-probs, sharing the group's context and image features. */
static int remember(struct worker *w, const struct rollout_request *rq, const struct rollout_output *o,
                    char (*ids)[ROLLOUT_ID_LEN], struct dsr_err *err) {
    const struct janus_config *c = &w->rt.model.cfg;
    struct rollout_shared *sh = rollout_shared_new(rq->understanding, rq->context, rq->n_context, o->features,
                                                   o->features ? c->vision.num_image_tokens : 0,
                                                   c->vision.hidden_size);
    if (!sh) return dsr_errf(err, "out of memory for the rollout cache");
    int rc = 0;
    for (int g = 0; rc == 0 && g < rq->n; g++) {
        const float *lp;
        int n;
        const int32_t *tokens = rollout_output_tokens(&w->rt, rq, o, g, &lp, &n);
        rc = rollout_cache_add(&w->cache, sh, tokens, lp, n, ids[g], err);
    }
    rollout_shared_unref(sh);
    return rc;
}

static void run_rollout(struct worker *w, struct job *j) {
    struct dsr_err err = {{0}};
    if (engine_rollout(&w->rt, j->rollout, j->rollout_out, &err) ||
        remember(w, j->rollout, j->rollout_out, j->rollout_ids, &err)) {
        fail_job(j, &err);
        return;
    }
    unsigned long n = 0;
    if (j->rollout->understanding)
        for (int g = 0; g < j->rollout->n; g++) n += (unsigned long)j->rollout_out->text.lengths[g];
    else
        n = (unsigned long)j->rollout->n * (unsigned long)w->rt.n_codes;
    metrics_add(w->metrics, j->rollout->understanding ? MC_TOKENS_GENERATED : MC_CODES_GENERATED, n);
    atomic_store(&w->rollouts_cached, w->cache.count);
    if (j->rollout->score)
        history_rollouts(&w->history, j->rollout->understanding, j->rollout_out->rewards, j->rollout->n);
}

/* Applies the update and records its response under its idempotency key
 * here, before the next job: a checkpoint queued behind it then carries the
 * record along with the weights that contain the update. */
static void run_update(struct worker *w, struct job *j) {
    if (!atomic_load(&w->model_finite)) {
        proto_fail(&j->error, 503, NULL, "the model's weights are not finite (%s); /reload a good checkpoint",
                   w->nonfinite_tensor);
        return;
    }
    if (learner_update(&w->rt, &w->learner, &w->cache, j->update, &j->stats, &j->error)) return;
    j->policy_version = atomic_fetch_add(&w->policy_version, 1) + 1;
    metrics_add(w->metrics, MC_UPDATES_APPLIED, 1);
    const struct update_request *u = j->update;
    history_update(&w->history, j->policy_version, u->simpo, u->simpo ? u->n_samples / 2 : u->n_samples, &j->stats);
    const struct proto_stamp st = {w->rt.name, j->policy_version};
    if (j->idem_key) idem_finish(w->idem, j->idem_key, &j->stats, &st);
}

static void run_checkpoint(struct worker *w, struct job *j) {
    char *records = idem_export(w->idem);
    if (!records) {
        proto_fail(&j->error, 500, NULL, "out of memory saving the idempotency records");
        return;
    }
    struct checkpoint_extra extra = {IDEM_CHECKPOINT_FILE, records, strlen(records)};
    learner_checkpoint(&w->rt, &w->learner, j->dir, j->policy_version, &extra, &j->error);
    free(records);
}

/* The weights and the idempotency records both become the checkpoint's:
 * updates it contains are answered from their records, rolled-back ones
 * run again.  The records are read first so a bad file changes nothing. */
static void run_reload(struct worker *w, struct job *j) {
    json_t *records;
    struct dsr_err err = {{0}};
    long version = 0;
    if (idem_load(j->dir, &records, &err)) {
        proto_fail(&j->error, 400, "path", "%s", err.msg);
    } else if (learner_reload(&w->rt, &w->learner, j->dir, &version, &j->error) == 0) {
        atomic_store(&w->policy_version, version);
        atomic_store(&w->model_finite, true); /* checkpoint_load_weights refuses non-finite tensors */
        j->policy_version = version;
        idem_import(w->idem, records);
        history_reload(&w->history, version);
    }
    json_decref(records);
}

/* Runs one job that is not a scoring batch; sets its policy_version. */
static void run_single(struct worker *w, struct job *j) {
    j->policy_version = atomic_load(&w->policy_version);
    switch (j->kind) {
    case JOB_ROLLOUT: run_rollout(w, j); break;
    case JOB_UPDATE: run_update(w, j); break;
    case JOB_CHECKPOINT: run_checkpoint(w, j); break;
    case JOB_RELOAD: run_reload(w, j); break;
    case JOB_SCORE: break;
    }
}

/* Takes the head job, plus the scoring jobs right behind a scoring head
 * while the batch stays within --max-batch-tokens rows.  Called locked. */
static int take_batch(struct worker *w, struct job **batch, int cap) {
    int n = 0, rows = 0;
    while (w->head && n < cap) {
        struct job *j = w->head;
        if (n > 0 && (j->kind != JOB_SCORE || batch[0]->kind != JOB_SCORE)) break;
        int r = j->kind == JOB_SCORE ? job_rows(j) : 0;
        if (n > 0 && rows + r > w->cfg->max_batch_tokens) break;
        rows += r;
        w->head = j->next;
        if (!w->head) w->tail = NULL;
        w->depth--;
        batch[n++] = j;
    }
    atomic_store(&w->queue_depth, w->depth);
    return n;
}

/* Hands the free pages of every malloc arena back to the kernel, at most
 * every TRIM_INTERVAL_S seconds: request buffers freed by HTTP threads
 * otherwise stay resident between bursts (a few ms per call, off the
 * HTTP threads' path). */
#define TRIM_INTERVAL_S 10.0
static void return_free_memory(double *last) {
#if defined(__GLIBC__)
    double now = now_s();
    if (now - *last < TRIM_INTERVAL_S) return;
    *last = now;
    malloc_trim(0);
#else
    (void)last;
#endif
}

const char *worker_weights_dtype(int held) {
    return held == WEIGHTS_HELD_BF16 ? "bf16" : held == WEIGHTS_HELD_F32 ? "float32" : "mixed";
}

/* What GET /model reads of memory (HTTP threads must not walk the table
 * the worker may be promoting). */
static void publish_memory(struct worker *w) {
    const struct param_table *pt = &w->rt.model.params;
    int held = pt->trainable_bf16 ? WEIGHTS_HELD_BF16 : pt->frozen_bf16 ? WEIGHTS_HELD_MIXED : WEIGHTS_HELD_F32;
    atomic_store(&w->weights_dtype, held);
    atomic_store(&w->weights_bytes, (long)pt_weight_bytes(pt));
    long opt = w->learner.active ? (long)(3 * w->learner.tr.n_params * sizeof(float)) : 0;
    atomic_store(&w->optimizer_bytes, opt);
}

/* The adapters to declare: --adapter's settings (any --lora-* flag given
 * must agree with them), else the flags'. */
static int resolve_lora(const struct dsrd_config *cfg, struct lora_config *lora, struct dsr_err *err) {
    *lora = cfg->lora;
    if (!cfg->adapter) return 0;
    struct lora_config ad;
    if (adapter_config_read(cfg->adapter, &ad, NULL, 0, err)) return -1;
    struct lora_config flags = ad;
    if (cfg->lora.rank) flags.rank = cfg->lora.rank;
    if (cfg->lora_alpha_given) flags.alpha = cfg->lora.alpha;
    if (cfg->lora_targets_given) flags.targets = cfg->lora.targets;
    if (adapter_config_check(&ad, &flags, err))
        return dsr_err_prefix(err, "--adapter %s disagrees with the --lora-* flags", cfg->adapter);
    *lora = ad;
    return 0;
}

/* Loads the model (with --adapter's weights on top). */
static int load_model(struct worker *w, struct dsr_err *err) {
    struct lora_config lora;
    if (resolve_lora(w->cfg, &lora, err)) return -1;
    const struct janus_runtime_options opt = {.model = w->cfg->model_dir, .quantizer = w->cfg->quantizer,
                                               .weights = w->cfg->weights, .lora = &lora,
                                               .tpl = w->cfg->tpl, .boi_id = w->cfg->boi_id, .eoi_id = w->cfg->eoi_id};
    if (janus_runtime_load(&opt, &w->rt, err)) return -1;
    if (!w->cfg->adapter) return 0;
    long version = 0;
    if (checkpoint_load_weights(&w->rt.model, w->cfg->adapter, &version, NULL, err)) {
        janus_runtime_free(&w->rt);
        return -1;
    }
    atomic_store(&w->policy_version, version);
    return 0;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct dsr_err err = {{0}};
    if (w->cfg->threads > 0) dsr_set_threads(w->cfg->threads);
    if (load_model(w, &err) ||
        rollout_cache_init(&w->cache, w->cfg->rollout_cache_count, w->cfg->rollout_cache_bytes, &err) ||
        learner_state_init(&w->learner, &w->rt.model, w->cfg->reference, w->cfg->update_memory_budget, &err)) {
        snprintf(w->load_error, sizeof w->load_error, "%s", err.msg);
        atomic_store(&w->state, WORKER_FAILED);
        return NULL;
    }
    int cap = w->cfg->queue_depth;
    struct job **batch = malloc((size_t)cap * sizeof *batch);
    if (!batch) {
        snprintf(w->load_error, sizeof w->load_error, "out of memory for the job batch");
        atomic_store(&w->state, WORKER_FAILED);
        return NULL;
    }
    prep_limits(&w->rt, w->cfg, &w->limits);
    double last_trim = now_s();
    /* served all the same, so that /reload can replace the weights; /health says so */
    const struct param *bad = pt_first_nonfinite(&w->rt.model.params);
    if (bad) snprintf(w->nonfinite_tensor, sizeof w->nonfinite_tensor, "%s", bad->name);
    atomic_store(&w->model_finite, bad == NULL);
    publish_memory(w);
    atomic_store(&w->state, WORKER_READY);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stopping) pthread_cond_wait(&w->work_cv, &w->mu);
        if (!w->head) break; /* stopping and drained */
        int n = take_batch(w, batch, cap);
        pthread_mutex_unlock(&w->mu);
        double t0 = now_s();
        if (batch[0]->kind == JOB_SCORE) {
            long version = atomic_load(&w->policy_version);
            run_score_batch(w, batch, n);
            for (int i = 0; i < n; i++) batch[i]->policy_version = version;
        } else {
            run_single(w, batch[0]);
        }
        metrics_job(w->metrics, metric_kind(batch[0]->kind), now_s() - t0);
        publish_memory(w);
        return_free_memory(&last_trim);
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < n; i++) batch[i]->done = true;
        pthread_cond_broadcast(&w->done_cv);
    }
    pthread_mutex_unlock(&w->mu);
    free(batch);
    return NULL;
}

int worker_start(struct worker *w, const struct dsrd_config *cfg, struct metrics *metrics, struct idem_store *idem,
                 struct dsr_err *err) {
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->metrics = metrics;
    w->idem = idem;
    atomic_init(&w->state, WORKER_LOADING);
    atomic_init(&w->policy_version, 0);
    atomic_init(&w->queue_depth, 0);
    atomic_init(&w->rollouts_cached, 0);
    atomic_init(&w->model_finite, false);
    atomic_init(&w->weights_dtype, WEIGHTS_HELD_F32);
    atomic_init(&w->weights_bytes, 0);
    atomic_init(&w->optimizer_bytes, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work_cv, NULL);
    pthread_cond_init(&w->done_cv, NULL);
    if (history_init(&w->history, cfg->stats_history, err)) return -1;
    if (pthread_create(&w->thread, NULL, worker_main, w)) {
        history_destroy(&w->history);
        return dsr_errf(err, "cannot start the compute thread");
    }
    return 0;
}

int worker_run(struct worker *w, struct job *j) {
    j->done = false;
    j->next = NULL;
    j->error.code = 0;
    if (atomic_load(&w->state) != WORKER_READY)
        return proto_fail(&j->error, 503, NULL, "the model is not loaded (%s)",
                          atomic_load(&w->state) == WORKER_LOADING ? "loading" : w->load_error);
    pthread_mutex_lock(&w->mu);
    if (w->stopping || w->depth >= w->cfg->queue_depth) {
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);
        return proto_fail(&j->error, 503, NULL, stopping ? "the server is shutting down"
                                                         : "the compute queue is full (--queue-depth %d); retry later",
                          w->cfg->queue_depth);
    }
    if (w->tail) w->tail->next = j;
    else w->head = j;
    w->tail = j;
    w->depth++;
    atomic_store(&w->queue_depth, w->depth);
    pthread_cond_signal(&w->work_cv);
    while (!j->done) pthread_cond_wait(&w->done_cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return j->error.code ? -1 : 0;
}

void worker_stop(struct worker *w) {
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_broadcast(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (atomic_load(&w->state) == WORKER_READY) {
        learner_state_free(&w->learner);
        rollout_cache_free(&w->cache);
        janus_runtime_free(&w->rt);
    }
    history_destroy(&w->history);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
}

enum worker_state worker_get_state(struct worker *w) { return (enum worker_state)atomic_load(&w->state); }
