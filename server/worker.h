/* The compute worker: one thread that owns the model (loads it, then runs
 * every job that touches the weights) fed by a bounded FIFO queue.
 *
 * HTTP threads decode and prepare a job, then worker_run() enqueues it and
 * waits on a condition variable until the worker marks it done.  A full
 * queue, a model still loading, or a draining server answer 503 at once.
 * Consecutive scoring jobs at the head of the queue are folded into one
 * batched forward (engine_score over all their items, up to
 * --max-batch-tokens rows); jobs are otherwise run strictly in order, so an
 * update is serialized with everything else and each response's
 * policy_version is the version its computation used (for /update the
 * version it produced, for /reload the one it loaded). */
#ifndef DSRD_WORKER_H
#define DSRD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "janus/engine.h"
#include "learner.h"
#include "idempotency.h"
#include "metrics.h"
#include "proto_error.h"
#include "rollout_cache.h"
#include "janus/runtime.h"
#include "train_history.h"

enum job_kind { JOB_SCORE, JOB_ROLLOUT, JOB_UPDATE, JOB_CHECKPOINT, JOB_RELOAD };

struct job {
    enum job_kind kind;
    /* JOB_SCORE */
    struct score_request **score;
    int n_score;
    /* JOB_ROLLOUT */
    const struct rollout_request *rollout;
    struct rollout_output *rollout_out;
    char (*rollout_ids)[ROLLOUT_ID_LEN]; /* [rollout->n], filled: the rollouts' ids in the cache */
    /* JOB_UPDATE */
    const struct update_request *update;
    const char *idem_key;     /* claimed idempotency key, or NULL */
    struct train_stats stats;
                              /* out: stats; the worker records the response under idem_key
                                 before taking the next job */
    /* JOB_CHECKPOINT (dir to create) / JOB_RELOAD (dir to load) */
    const char *dir;
    /* result, written by the worker */
    struct proto_error error; /* error.code 0: success */
    long policy_version;
    bool done;
    struct job *next;
};

enum worker_state { WORKER_LOADING, WORKER_READY, WORKER_FAILED };

struct worker {
    const struct dsrd_config *cfg;
    struct metrics *metrics;
    struct idem_store *idem;     /* the server's; checkpoints save it, reloads restore it */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    struct job *head, *tail;
    int depth;
    bool stopping;
    atomic_int state;            /* enum worker_state */
    atomic_long policy_version;
    atomic_long queue_depth;     /* mirror of depth for lock-free metrics */
    atomic_long rollouts_cached;
    atomic_bool model_finite;    /* every weight finite (checked at load; reloads and steps keep it so) */
    /* what GET /model reports of memory, published by the worker after each job */
    atomic_int weights_dtype;    /* enum worker_weights_dtype */
    atomic_long weights_bytes, optimizer_bytes;
    char nonfinite_tensor[128];  /* the first tensor found non-finite at load; set before READY */
    struct train_history history; /* GET /stats: written here, read by HTTP threads (its own lock) */
    char load_error[512];
    /* owned by the worker thread once started */
    struct janus_runtime rt;
    struct rollout_cache cache;
    struct learner_state learner;
    struct proto_limits limits;  /* valid once READY */
};

/* How the weight matrices are held: all BF16, all float32, or the frozen
 * ones BF16 and the trainable ones float32 (after the first full update). */
enum worker_weights_dtype { WEIGHTS_HELD_BF16, WEIGHTS_HELD_F32, WEIGHTS_HELD_MIXED };
const char *worker_weights_dtype(int held); /* "bf16" | "float32" | "mixed" */

int  worker_start(struct worker *w, const struct dsrd_config *cfg, struct metrics *metrics, struct idem_store *idem,
                  struct dsr_err *err);
/* Runs j to completion (0), or fills j->error with 503 without queueing (-1). */
int  worker_run(struct worker *w, struct job *j);
/* Refuses new jobs, finishes the queued ones, joins the thread, frees the model. */
void worker_stop(struct worker *w);
enum worker_state worker_get_state(struct worker *w);

#endif
