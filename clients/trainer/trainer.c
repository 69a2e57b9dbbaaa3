#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dataset.h"
#include "eval_hook.h"
#include "progress.h"
#include "retry.h"
#include "reward_source.h"
#include "rollouts.h"
#include "step_stats.h"
#include "train_state.h"
#include "update_req.h"

/* Re-syncs allowed when a server answers at an unexpected version or the
 * learner loses an update (restart); beyond that something else is wrong. */
#define MAX_RESYNCS 5

struct train_run {
    const struct train_config *cfg;
    struct dsr_client *servers[TRAIN_MAX_SERVERS];
    struct dsr_client *learner;
    struct dataset images, prompts;
    struct train_state st;
    FILE *log;
    FILE *progress;
    int tty;
    struct retry_clock clock;
    char pending_path[4200];
    long retries; /* extra attempts made during the current step */
    double t_start;   /* when this process began training (ETA) */
    long step_start;  /* r->st.step then (a resumed run counts from it) */
    struct reward_env rewards; /* --reward's grader and image directory */
    struct eval_done evals;    /* steps with a logged evaluation */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Unix time: lets plots put runs (and resumed runs) on one wall clock. */
static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *directions_name(unsigned d) {
    return d == (DIR_UND | DIR_GEN) ? "und,gen" : d == DIR_UND ? "und" : d == DIR_GEN ? "gen" : "";
}

static int call_fail(struct dsr_err *err, const char *what, const struct dsr_call_err *e) {
    char buf[700];
    dsr_call_err_format(e, buf, sizeof buf);
    return dsr_errf(err, "%s: %s", what, buf);
}

/* ---- generic retried call ------------------------------------------------ */

struct call_job {
    const struct dsr_client *client;
    const char *method, *path;
    json_t *body;
    int admin;
    json_t *out;
};

static int call_attempt(void *ctx, int attempt, struct dsr_call_err *e) {
    (void)attempt;
    struct call_job *j = ctx;
    json_decref(j->out);
    j->out = NULL;
    return dsr_call(j->client, j->method, j->path, j->body, j->admin, &j->out, e);
}

static void notify_retry(void *ctx, int attempt, double delay, const struct dsr_call_err *e) {
    struct train_run *r = ctx;
    char buf[700];
    dsr_call_err_format(e, buf, sizeof buf);
    r->retries++;
    fprintf(r->progress, "%sretry %d in %.1fs: %s\n", r->tty ? "\r\033[K" : "", attempt, delay, buf);
    fflush(r->progress);
}

/* dsr_call with the run's retry policy; *out is a new reference on success. */
static int call_retried(struct train_run *r, const struct dsr_client *c, const char *method, const char *path,
                        json_t *body, int admin, json_t **out, struct dsr_call_err *e) {
    struct call_job j = {c, method, path, body, admin, NULL};
    int rc = retry_run(&r->cfg->retry, &r->clock, call_attempt, &j, notify_retry, r, NULL, e);
    *out = j.out;
    if (rc != 0) {
        json_decref(j.out);
        *out = NULL;
    }
    return rc;
}

/* ---- versions and reloads ------------------------------------------------- */

static int server_version(struct train_run *r, const struct dsr_client *c, long *version, struct dsr_err *err) {
    json_t *resp;
    struct dsr_call_err e;
    if (call_retried(r, c, "GET", "/health", NULL, 0, &resp, &e) != 0) {
        char what[300];
        snprintf(what, sizeof what, "GET %s/health", dsr_client_base_url(c));
        return call_fail(err, what, &e);
    }
    *version = dsr_policy_version(resp);
    json_decref(resp);
    if (*version < 0) return dsr_errf(err, "%s/health: no policy_version", dsr_client_base_url(c));
    return 0;
}

/* Brings server c to version `want` by reloading the last checkpoint, when
 * that checkpoint has exactly that version. */
static int reload_to(struct train_run *r, const struct dsr_client *c, long have, long want, struct dsr_err *err) {
    if (r->st.last_checkpoint[0] == '\0' || r->st.last_checkpoint_version != want)
        return dsr_errf(err,
                        "server %s is at policy_version %ld but the run is at %ld, and no checkpoint of "
                        "version %ld exists to reload (use --checkpoint-every 1 to survive restarts)",
                        dsr_client_base_url(c), have, want, want);
    json_t *body = json_pack("{s:s}", "path", r->st.last_checkpoint);
    json_t *resp;
    struct dsr_call_err e;
    int rc = call_retried(r, c, "POST", "/reload", body, 1, &resp, &e);
    json_decref(body);
    if (rc != 0) {
        char what[300];
        snprintf(what, sizeof what, "POST %s/reload %s", dsr_client_base_url(c), r->st.last_checkpoint);
        return call_fail(err, what, &e);
    }
    long v = dsr_policy_version(resp);
    json_decref(resp);
    if (v != want)
        return dsr_errf(err, "server %s reloaded %s but reports policy_version %ld, not the learner's %ld",
                        dsr_client_base_url(c), r->st.last_checkpoint, v, want);
    fprintf(r->progress, "%s%s: reloaded %s (policy_version %ld)\n", r->tty ? "\r\033[K" : "",
            dsr_client_base_url(c), r->st.last_checkpoint, v);
    return 0;
}

/* Every server (and the learner) at the run's policy_version. */
static int sync_servers(struct train_run *r, struct dsr_err *err) {
    long want = r->st.policy_version;
    for (int i = -1; i < r->cfg->n_servers; i++) {
        const struct dsr_client *c = i < 0 ? r->learner : r->servers[i];
        long v;
        if (server_version(r, c, &v, err) != 0) return -1;
        if (v != want && reload_to(r, c, v, want, err) != 0) return -1;
    }
    return 0;
}

/* ---- rollouts ------------------------------------------------------------- */

/* Fills groups for this step from copies of the cursors and RNG (the caller
 * commits them to the state once the step's rollouts are accepted). */
static int plan_groups(struct train_run *r, struct group *groups, int *n_groups, struct train_state *next) {
    const struct train_config *cfg = r->cfg;
    int n = 0;
    for (int i = 0; i < cfg->batch_images; i++) {
        memset(&groups[n], 0, sizeof groups[n]);
        groups[n].task = TASK_UNDERSTANDING;
        groups[n].item = dataset_at(&r->images, next->image_cursor++);
        n++;
    }
    for (int i = 0; i < cfg->batch_prompts; i++) {
        memset(&groups[n], 0, sizeof groups[n]);
        groups[n].task = TASK_GENERATION;
        groups[n].item = dataset_at(&r->prompts, next->prompt_cursor++);
        n++;
    }
    for (int i = 0; i < n; i++) {
        groups[i].seed = (uint32_t)(rng_next_u64(&next->rng) >> 33); /* 31 bits: any JSON integer parser takes it */
        groups[i].server = i % cfg->n_servers;
    }
    *n_groups = n;
    return 0;
}

static void groups_free(struct group *groups, int n) {
    for (int i = 0; i < n; i++) group_free(&groups[i]);
}

/* Samples and scores the step's groups; on success *next holds the state
 * with cursors and RNG advanced past them. */
static int step_rollouts(struct train_run *r, struct group *groups, int *n_groups, struct train_state *next,
                         struct dsr_err *err) {
    for (int attempt = 0;; attempt++) {
        *next = r->st;
        plan_groups(r, groups, n_groups, next);
        struct dsr_call_err e;
        for (int i = 0; i < *n_groups; i++) {
            if (group_prepare(&groups[i], r->cfg, &e) != 0) {
                groups_free(groups, *n_groups);
                return call_fail(err, "rollout request", &e);
            }
        }
        int mismatch = 0;
        if (groups_run(groups, *n_groups, r->servers, &r->cfg->retry, r->cfg->group_size, r->st.policy_version,
                       &mismatch, &e) != 0) {
            groups_free(groups, *n_groups);
            return call_fail(err, "rollouts", &e);
        }
        for (int i = 0; i < *n_groups; i++) r->retries += groups[i].attempts - 1;
        if (!mismatch) return 0;
        groups_free(groups, *n_groups);
        if (attempt >= MAX_RESYNCS)
            return dsr_errf(err, "rollouts keep coming from servers not at policy_version %ld", r->st.policy_version);
        fprintf(r->progress, "%sa server changed policy_version during rollouts; re-syncing\n", r->tty ? "\r\033[K" : "");
        if (sync_servers(r, err) != 0) return -1;
    }
}

/* Context token arrays per group (NEW references in ctx[]): each group's
 * /rollout response names the context it was sampled from (checked by
 * groups_run), so /update cites exactly that, whichever server sampled. */
static void step_contexts(const struct group *groups, int n_groups, json_t **ctx) {
    for (int i = 0; i < n_groups; i++)
        ctx[i] = json_incref(json_object_get(json_object_get(groups[i].response, "context"), "tokens"));
}

static void set_real(json_t *rec, const char *prefix, const char *name, double v) {
    char key[64];
    snprintf(key, sizeof key, "%s_%s", prefix, name);
    json_object_set_new(rec, key, json_real(v));
}

/* Reward statistics of one direction, added to rec as <prefix>_reward_mean,
 * _reward_std, _groups, _reward_group_std, _zero_std_frac and, when an
 * external grader gave the rewards, _self_reward_mean.  Returns the number
 * of groups with no reward spread. */
static int add_reward_stats(json_t *rec, const struct group *groups, int n_groups, enum group_task task,
                            const char *prefix, const struct train_config *cfg) {
    double rewards[TRAIN_MAX_GROUPS * TRAIN_MAX_GROUP_SIZE], self[TRAIN_MAX_GROUPS * TRAIN_MAX_GROUP_SIZE];
    int G = cfg->group_size, ng = 0, has_self = 1;
    for (int i = 0; i < n_groups; i++) {
        if (groups[i].task != task) continue;
        memcpy(rewards + (size_t)ng * G, groups[i].rewards, (size_t)G * sizeof *rewards);
        memcpy(self + (size_t)ng * G, groups[i].self_rewards, (size_t)G * sizeof *self);
        has_self &= groups[i].has_self;
        ng++;
    }
    if (ng == 0) return 0;
    struct reward_summary s;
    reward_summary_of(rewards, ng, G, &s);
    set_real(rec, prefix, "reward_mean", s.mean);
    set_real(rec, prefix, "reward_std", s.std);
    set_real(rec, prefix, "reward_group_std", s.group_std);
    set_real(rec, prefix, "zero_std_frac", s.zero_std_frac);
    char key[64];
    snprintf(key, sizeof key, "%s_groups", prefix);
    json_object_set_new(rec, key, json_integer(ng));
    if (cfg->reward == REWARD_COMMAND && has_self) {
        struct reward_summary ss;
        reward_summary_of(self, ng, G, &ss);
        set_real(rec, prefix, "self_reward_mean", ss.mean);
    }
    return s.zero_std_groups;
}

/* ---- update and checkpoint -------------------------------------------------- */

static int checkpoint_due(const struct train_run *r, long step_after) {
    long k = r->cfg->checkpoint_every;
    return r->cfg->n_servers > 1 || strcmp(r->cfg->learner, r->cfg->servers[0]) != 0 ||
           (k > 0 && step_after % k == 0);
}

/* Applies the pending update exactly once and writes the step's checkpoint
 * when due.  *resp receives the /update answer (NULL when the learner had
 * already applied it and its first answer is gone). */
static int commit_update(struct train_run *r, json_t *req, long step_after, json_t **resp, struct dsr_err *err) {
    long want = r->st.policy_version; /* before the update */
    int applied = 0, ckpt_done = !checkpoint_due(r, step_after), stale = 0;
    /* Named by step and update key: unique to this update, so runs sharing
     * a --checkpoint-dir never collide, and a checkpoint that already exists
     * under this name is this very update's (written before a crash). */
    char ckpt_name[TRAIN_NAME_MAX];
    snprintf(ckpt_name, sizeof ckpt_name, "step-%06ld-%.8s", step_after,
             json_string_value(json_object_get(req, "idempotency_key")));
    *resp = NULL;
    for (int round = 0; round <= MAX_RESYNCS; round++) {
        long v;
        if (server_version(r, r->learner, &v, err) != 0) return -1;
        if (v == want) applied = 0; /* never applied, or lost with a restart */
        /* stale: its weights hold this update on an older base (even at v == want) */
        if ((v < want || stale) && reload_to(r, r->learner, v, want, err) != 0) return -1;
        stale = 0;
        if (v > want + 1)
            return dsr_errf(err, "learner is at policy_version %ld, beyond the run's %ld + 1: another trainer?", v,
                            want);
        struct dsr_call_err e;
        if (!applied) {
            /* v == want + 1 here means the same process applied it and still
             * holds the key, so this returns its first answer */
            json_decref(*resp);
            *resp = NULL;
            if (call_retried(r, r->learner, "POST", "/update", req, 1, resp, &e) != 0) {
                if (dsr_call_err_retryable(&e)) continue;
                return call_fail(err, "POST /update", &e);
            }
            long got = dsr_policy_version(*resp);
            if (got < want + 1) {
                /* the learner restarted during the call (its retries) and
                 * applied the update to older weights: reload the last
                 * checkpoint (next round) and apply it again */
                fprintf(r->progress, "%sthe learner answered /update with policy_version %ld, not %ld: it restarted; "
                        "re-syncing\n", r->tty ? "\r\033[K" : "", got, want + 1);
                stale = 1;
                continue;
            }
            if (got != want + 1)
                return dsr_errf(err, "/update answered policy_version %ld, expected %ld (applied twice)", got,
                                want + 1);
            applied = 1;
        }
        if (!ckpt_done) {
            json_t *body = json_pack("{s:s}", "name", ckpt_name), *ck = NULL;
            int rc = call_retried(r, r->learner, "POST", "/checkpoint", body, 1, &ck, &e);
            json_decref(body);
            /* dsrd never overwrites a checkpoint: 400 on "name" means this
             * update's checkpoint exists already */
            int exists = rc != 0 && e.status == 400 && strcmp(e.param, "name") == 0;
            if (rc != 0 && !exists) {
                if (dsr_call_err_retryable(&e)) continue;
                return call_fail(err, "POST /checkpoint", &e);
            }
            long cv = exists ? want + 1 : dsr_policy_version(ck);
            json_decref(ck);
            if (cv != want + 1) continue; /* the learner restarted in between: re-check */
            snprintf(r->st.last_checkpoint, sizeof r->st.last_checkpoint, "%s", ckpt_name);
            r->st.last_checkpoint_version = want + 1;
            ckpt_done = 1;
        }
        return 0;
    }
    return dsr_errf(err, "the learner kept restarting or losing updates (%d re-syncs)", MAX_RESYNCS);
}

/* ---- logging ---------------------------------------------------------------- */

static void copy_number(json_t *rec, const json_t *resp, const char *key) {
    const json_t *v = json_object_get(resp, key);
    if (json_is_number(v) && isfinite(json_number_value(v))) json_object_set_new(rec, key, json_real(json_number_value(v)));
}

/* Appends rec (with the wall clock) to --log. */
static int log_write(struct train_run *r, json_t *rec, struct dsr_err *err) {
    json_object_set_new(rec, "wall_time", json_real(wall_now()));
    char *line = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
    if (!line) return dsr_errf(err, "cannot encode the log record");
    int ok = fprintf(r->log, "%s\n", line) > 0 && fflush(r->log) == 0;
    free(line);
    if (!ok) return dsr_errf(err, "cannot write --log %s", r->cfg->log_path);
    return 0;
}

/* A step's record: to --log, and the progress line. */
static int log_record(struct train_run *r, json_t *rec, struct dsr_err *err) {
    if (log_write(r, rec, err) != 0) return -1;

    struct progress_info pi = {
        .step = r->st.step,
        .steps = r->cfg->steps,
        .policy_version = r->st.policy_version,
        .done_this_run = r->st.step - r->step_start,
        .run_seconds = now_s() - r->t_start,
        .step_seconds = json_real_value(json_object_get(rec, "seconds")),
        .has_und = json_object_get(rec, "und_reward_mean") != NULL,
        .has_gen = json_object_get(rec, "gen_reward_mean") != NULL,
        .has_loss = json_object_get(rec, "loss") != NULL,
        .und = json_real_value(json_object_get(rec, "und_reward_mean")),
        .gen = json_real_value(json_object_get(rec, "gen_reward_mean")),
        .loss = json_real_value(json_object_get(rec, "loss")),
    };
    char text[512];
    progress_format(&pi, r->tty ? 20 : 0, text, sizeof text);
    fprintf(r->progress, "%s%s%s", r->tty ? "\r\033[K" : "", text, r->tty ? "" : "\n");
    fflush(r->progress);
    return 0;
}

/* ---- the step ----------------------------------------------------------------- */

/* Saves {"request", "record"} for the pending update and the advanced state. */
static int save_pending(struct train_run *r, json_t *req, json_t *rec, struct dsr_err *err) {
    json_t *p = json_pack("{s:O, s:O}", "request", req, "record", rec);
    char *text = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!text) return dsr_errf(err, "cannot encode the pending update");
    int rc = atomic_write_file(r->pending_path, text, strlen(text), err);
    free(text);
    if (rc != 0) return -1;
    return train_state_save(&r->st, r->cfg->state_path, err);
}

/* Sends the saved update, commits the step and logs it. */
static int finish_step(struct train_run *r, json_t *req, json_t *rec, double t0, struct dsr_err *err) {
    long step_after = r->st.step + 1;
    json_t *resp = NULL;
    if (commit_update(r, req, step_after, &resp, err) != 0) return -1;
    r->st.step = step_after;
    r->st.policy_version += 1;
    r->st.pending_key[0] = '\0';
    if (train_state_save(&r->st, r->cfg->state_path, err) != 0) {
        json_decref(resp);
        return -1;
    }
    unlink(r->pending_path);
    json_object_set_new(rec, "step", json_integer(r->st.step));
    json_object_set_new(rec, "policy_version", json_integer(r->st.policy_version));
    if (r->st.last_checkpoint_version == r->st.policy_version)
        json_object_set_new(rec, "checkpoint", json_string(r->st.last_checkpoint));
    static const char *const keys[] = {"loss", "kl", "clip_fraction", "grad_norm", "tokens"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) copy_number(rec, resp, keys[i]);
    json_decref(resp);
    json_object_set_new(rec, "seconds", json_real(now_s() - t0));
    json_object_set_new(rec, "retries", json_integer(r->retries));
    return log_record(r, rec, err);
}

static int run_step(struct train_run *r, struct dsr_err *err) {
    double t0 = now_s();
    r->retries = 0;
    if (sync_servers(r, err) != 0) return -1;
    struct group groups[TRAIN_MAX_GROUPS];
    int n_groups = 0;
    struct train_state next;
    if (step_rollouts(r, groups, &n_groups, &next, err) != 0) return -1;
    if (rewards_apply(&r->rewards, groups, n_groups, r->st.step + 1, err) != 0) {
        groups_free(groups, n_groups);
        return -1;
    }

    json_t *ctx[TRAIN_MAX_GROUPS];
    step_contexts(groups, n_groups, ctx);
    char key[TRAIN_KEY_MAX];
    int units = 0, rc = -1;
    json_t *req = NULL, *rec = json_object();
    if (train_new_key(key, err) != 0) goto done;
    req = update_request_build(r->cfg, groups, n_groups, ctx, key, &units);
    if (!req) {
        dsr_errf(err, "cannot build the /update request (out of memory)");
        goto done;
    }
    json_object_set_new(rec, "algorithm", json_string(r->cfg->algorithm == ALGO_GRPO ? "grpo" : "simpo"));
    json_object_set_new(rec, "reward_source", json_string(reward_source_name(r->cfg->reward)));
    json_object_set_new(rec, "directions", json_string(directions_name(r->cfg->directions)));
    int flat = add_reward_stats(rec, groups, n_groups, TASK_UNDERSTANDING, "und", r->cfg) +
               add_reward_stats(rec, groups, n_groups, TASK_GENERATION, "gen", r->cfg);
    json_object_set_new(rec, "zero_std_frac", json_real(n_groups > 0 ? (double)flat / n_groups : 0.0));
    json_object_set_new(rec, r->cfg->algorithm == ALGO_GRPO ? "samples" : "pairs", json_integer(units));

    r->st.image_cursor = next.image_cursor;
    r->st.prompt_cursor = next.prompt_cursor;
    r->st.rng = next.rng;
    if (units == 0) {
        /* SimPO with no reward spread in any group: nothing to learn from */
        r->st.step += 1;
        json_object_set_new(rec, "step", json_integer(r->st.step));
        json_object_set_new(rec, "policy_version", json_integer(r->st.policy_version));
        json_object_set_new(rec, "skipped", json_true());
        json_object_set_new(rec, "seconds", json_real(now_s() - t0));
        rc = train_state_save(&r->st, r->cfg->state_path, err) == 0 ? log_record(r, rec, err) : -1;
        goto done;
    }
    snprintf(r->st.pending_key, sizeof r->st.pending_key, "%s", key);
    if (save_pending(r, req, rec, err) != 0) goto done;
    rc = finish_step(r, req, rec, t0, err);
done:
    json_decref(req);
    json_decref(rec);
    for (int i = 0; i < n_groups; i++) json_decref(ctx[i]);
    groups_free(groups, n_groups);
    return rc;
}

/* Runs --eval-cmd for the current step when due and not logged yet; its
 * failure is logged, not fatal. */
static int maybe_eval(struct train_run *r, struct dsr_err *err) {
    const struct train_config *cfg = r->cfg;
    long step = r->st.step;
    if (!cfg->eval_cmd || !eval_due(step, cfg->eval_every, cfg->steps) || eval_done_has(&r->evals, step)) return 0;
    if (sync_servers(r, err) != 0) return -1; /* it must see this step's policy */
    double t0 = now_s();
    json_t *result = NULL;
    struct dsr_err why;
    int ok = eval_hook_run(cfg->eval_cmd, cfg->learner, cfg->api_key, step, r->st.policy_version, &result, &why) == 0;
    json_t *rec = json_pack("{s:I, s:I, s:f}", "step", (json_int_t)step, "policy_version",
                            (json_int_t)r->st.policy_version, "seconds", now_s() - t0);
    if (!rec) {
        json_decref(result);
        return dsr_errf(err, "out of memory");
    }
    if (ok) json_object_set_new(rec, "eval", result);
    else json_object_set_new(rec, "eval_error", json_string(why.msg));
    if (ok && eval_done_add(&r->evals, step) != 0) {
        json_decref(rec);
        return dsr_errf(err, "out of memory");
    }
    int rc = log_write(r, rec, err);
    char *text = ok ? json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    fprintf(r->progress, "%seval at step %ld (v%ld)%s %.300s\n", r->tty ? "\r\033[K" : "", step,
            r->st.policy_version, ok ? ":" : " failed:", ok ? (text ? text : "") : why.msg);
    fflush(r->progress);
    free(text);
    json_decref(rec);
    return rc;
}

/* --resume with an update in flight: re-send it (same key) before going on. */
static int resume_pending(struct train_run *r, struct dsr_err *err) {
    json_error_t jerr;
    json_t *p = json_load_file(r->pending_path, 0, &jerr);
    json_t *req = json_object_get(p, "request"), *rec = json_object_get(p, "record");
    const char *key = json_string_value(json_object_get(req, "idempotency_key"));
    if (!json_is_object(req) || !json_is_object(rec) || !key || strcmp(key, r->st.pending_key) != 0) {
        json_decref(p);
        return dsr_errf(err, "--resume: %s is missing or does not hold update %s", r->pending_path, r->st.pending_key);
    }
    fprintf(r->progress, "resuming: re-sending update %s of step %ld\n", key, r->st.step + 1);
    int rc = finish_step(r, req, rec, now_s(), err);
    json_decref(p);
    return rc;
}

/* ---- setup -------------------------------------------------------------------- */

static int open_clients(struct train_run *r, struct dsr_err *err) {
    const struct train_config *cfg = r->cfg;
    struct dsr_client_opts o = {NULL, cfg->api_key, cfg->admin_key, cfg->timeout_ms, 5000};
    struct dsr_call_err e;
    for (int i = 0; i < cfg->n_servers; i++) {
        o.base_url = cfg->servers[i];
        if (!(r->servers[i] = dsr_client_new(&o, &e))) return call_fail(err, "--server", &e);
    }
    o.base_url = cfg->learner;
    if (!(r->learner = dsr_client_new(&o, &e))) return call_fail(err, "--learner", &e);
    return 0;
}

/* Says so when the learner takes /update from a caller without the admin
 * key: an empty /update is answered 401 by a guarded daemon and 400 (the
 * body is checked after the key) by an open one.  Nothing is changed. */
static void warn_unguarded_learner(struct train_run *r) {
    const struct train_config *cfg = r->cfg;
    struct dsr_client_opts o = {cfg->learner, NULL, NULL, cfg->timeout_ms, 5000};
    struct dsr_call_err e;
    for (int with_api_key = 0; with_api_key < 2; with_api_key++) {
        if (with_api_key && (!cfg->api_key || !cfg->admin_key || !strcmp(cfg->api_key, cfg->admin_key))) return;
        o.api_key = with_api_key ? cfg->api_key : NULL;
        struct dsr_client *c = dsr_client_new(&o, &e);
        json_t *out = NULL, *empty = json_object();
        int rc = c ? dsr_call(c, "POST", "/update", empty, 0, &out, &e) : -1;
        json_decref(empty);
        json_decref(out);
        dsr_client_free(c);
        if (rc == 0 || (e.kind == DSR_CALL_HTTP && e.status >= 400 && e.status < 500 && e.status != 401)) {
            fprintf(r->progress,
                    "warning: the learner %s applies /update without the admin key%s (dsrd was started without "
                    "--admin-key): anyone who can reach it can change the weights\n",
                    cfg->learner, with_api_key ? " (the api key is enough)" : "");
            return;
        }
    }
}

static int load_data(struct train_run *r, struct dsr_err *err) {
    const struct train_config *cfg = r->cfg;
    if (cfg->images_dir && cfg->batch_images > 0 && dataset_load_images(&r->images, cfg->images_dir, cfg->seed, err))
        return -1;
    if (cfg->prompts_file && cfg->batch_prompts > 0 &&
        dataset_load_prompts(&r->prompts, cfg->prompts_file, cfg->seed, err))
        return -1;
    return 0;
}

static void run_free(struct train_run *r) {
    for (int i = 0; i < TRAIN_MAX_SERVERS; i++) dsr_client_free(r->servers[i]);
    dsr_client_free(r->learner);
    dataset_free(&r->images);
    dataset_free(&r->prompts);
    reward_env_close(&r->rewards);
    eval_done_free(&r->evals);
    if (r->log) fclose(r->log);
}

static int run_body(struct train_run *r, struct dsr_err *err) {
    const struct train_config *cfg = r->cfg;
    if (load_data(r, err) != 0 || open_clients(r, err) != 0) return -1;
    snprintf(r->pending_path, sizeof r->pending_path, "%s.update.json", cfg->state_path);
    if (cfg->resume) {
        if (train_state_load(&r->st, cfg->state_path, err) != 0) return dsr_err_prefix(err, "--resume");
        if (r->st.seed != cfg->seed)
            return dsr_errf(err, "--resume: the state was written with --seed %llu, not %llu",
                            (unsigned long long)r->st.seed, (unsigned long long)cfg->seed);
    } else {
        long v;
        if (server_version(r, r->learner, &v, err) != 0) return -1;
        train_state_init(&r->st, cfg->seed, v);
        if (train_state_save(&r->st, cfg->state_path, err) != 0) return -1;
    }
    if (cfg->resume && cfg->eval_cmd && eval_done_load(&r->evals, cfg->log_path, err) != 0) return -1;
    r->log = fopen(cfg->log_path, "a");
    if (!r->log) return dsr_errf(err, "--log %s: cannot open for appending", cfg->log_path);
    if (reward_env_open(&r->rewards, cfg, err) != 0) return -1;
    warn_unguarded_learner(r);
    r->t_start = now_s();
    r->step_start = r->st.step;
    if (r->st.pending_key[0] && resume_pending(r, err) != 0) return -1;
    if (maybe_eval(r, err) != 0) return dsr_err_prefix(err, "evaluation at step %ld", r->st.step);
    while (r->st.step < cfg->steps) {
        if (run_step(r, err) != 0) return dsr_err_prefix(err, "step %ld", r->st.step + 1);
        if (maybe_eval(r, err) != 0) return dsr_err_prefix(err, "evaluation at step %ld", r->st.step);
    }
    /* replicas follow the final update too, so every server ends on the learner's version */
    if (cfg->n_servers > 1 && sync_servers(r, err) != 0) return dsr_err_prefix(err, "final sync");
    if (r->tty) fputc('\n', r->progress);
    return 0;
}

int trainer_run(const struct train_config *cfg, FILE *progress, struct dsr_err *err) {
    struct train_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.progress = progress;
    r.tty = isatty(fileno(progress));
    retry_clock_system(&r.clock);
    int rc = run_body(&r, err);
    if (rc != 0 && r.tty) fputc('\n', progress);
    run_free(&r);
    return rc;
}

int trainer_dry_run(const struct train_config *cfg, FILE *out, struct dsr_err *err) {
    struct train_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    if (load_data(&r, err) != 0) {
        run_free(&r);
        return -1;
    }
    fprintf(out, "dsr-train plan (dry run; no server is contacted)\n");
    for (int i = 0; i < cfg->n_servers; i++) fprintf(out, "  rollout server %d: %s\n", i, cfg->servers[i]);
    fprintf(out, "  learner: %s\n", cfg->learner);
    fprintf(out, "  data: %zu images (%d per step), %zu prompts (%d per step)\n", r.images.n, cfg->batch_images,
            r.prompts.n, cfg->batch_prompts);
    fprintf(out, "  steps: %ld, group size %d, %d rollouts per step\n", cfg->steps, cfg->group_size,
            (cfg->batch_images + cfg->batch_prompts) * cfg->group_size);
    if (cfg->algorithm == ALGO_GRPO)
        fprintf(out, "  algorithm: grpo (loss %s, epsilon %g..%g, beta %g, scale-rewards %s)\n", cfg->loss_type,
                cfg->epsilon, cfg->epsilon_high, cfg->beta, scale_rewards_name(cfg->scale));
    else
        fprintf(out, "  algorithm: simpo (beta %g, gamma %g)\n", cfg->simpo_beta, cfg->simpo_gamma);
    fprintf(out, "  directions: %s\n", directions_name(cfg->directions));
    fprintf(out, "  reward: %s%s%s%s\n", reward_source_name(cfg->reward), cfg->reward_cmd ? " (" : "",
            cfg->reward_cmd ? cfg->reward_cmd : "", cfg->reward_cmd ? ")" : "");
    if (cfg->eval_cmd) {
        fprintf(out, "  eval: %s at step 0", cfg->eval_cmd);
        if (cfg->eval_every > 0) fprintf(out, ", every %ld steps", cfg->eval_every);
        fprintf(out, " and after step %ld\n", cfg->steps);
    }
    fprintf(out, "  adamw: lr %g, weight decay %g, max grad norm %g\n", cfg->lr, cfg->weight_decay,
            cfg->max_grad_norm);
    fprintf(out, "  sampling: temperature %g, top-k %d, top-p %g, max tokens %d, cfg scale %g, question \"%s\"\n",
            cfg->temperature, cfg->top_k, cfg->top_p, cfg->max_tokens, cfg->cfg_scale, cfg->question);
    fprintf(out, "  checkpoints: %s\n",
            cfg->n_servers > 1 ? "every step (replicas reload)" : cfg->checkpoint_every > 0 ? "periodic" : "none");
    if (cfg->checkpoint_every > 0) fprintf(out, "  checkpoint every %ld steps\n", cfg->checkpoint_every);
    fprintf(out, "  log: %s, state: %s%s\n", cfg->log_path, cfg->state_path, cfg->resume ? " (resume)" : "");
    fprintf(out, "  seed %llu; step 1 would use:\n", (unsigned long long)cfg->seed);
    train_state_init(&r.st, cfg->seed, 0);
    struct group groups[TRAIN_MAX_GROUPS];
    int n = 0;
    struct train_state next = r.st;
    plan_groups(&r, groups, &n, &next);
    for (int i = 0; i < n; i++)
        fprintf(out, "    %s '%s' seed %u -> %s\n", groups[i].task == TASK_UNDERSTANDING ? "image " : "prompt",
                groups[i].item, groups[i].seed, cfg->servers[groups[i].server]);
    run_free(&r);
    return 0;
}
