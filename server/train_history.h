/* What the learner has been doing, as GET /stats shows it: a bounded ring
 * of the last updates this daemon applied (each with its /update response
 * fields) and, per direction, the running mean of the self-rewards of the
 * scored rollouts served since the update before it.
 *
 * The compute worker writes (one call per scored rollout group, applied
 * update or reload); HTTP threads read snapshots.  One mutex; owned by the
 * worker. */
#ifndef DSRD_TRAIN_HISTORY_H
#define DSRD_TRAIN_HISTORY_H

#include <pthread.h>
#include <stdbool.h>

#include "base/error.h"
#include "train/train.h"

/* Scored rollouts of one direction: count and sum of their rewards. */
struct reward_tally {
    long count;
    double sum, min, max;
};

struct history_update {
    long policy_version;      /* the version this update produced */
    double time;              /* Unix seconds it was applied */
    bool simpo;
    int samples;              /* GRPO samples, or SimPO pairs */
    struct train_stats stats; /* the /update response's loss, kl, clip_fraction, grad_norm, tokens */
    /* rollouts served at policy_version - 1, i.e. since the previous update */
    struct reward_tally und, gen;
};

struct train_history {
    pthread_mutex_t mu;
    struct history_update *ring; /* [cap]; the oldest at start */
    int cap, start, n;
    long recorded;               /* updates recorded since start-up (more than n once the ring wraps) */
    struct reward_tally und, gen; /* rollouts served since the last update */
    long und_total, gen_total;   /* scored rollouts since start-up */
};

int  history_init(struct train_history *h, int capacity, struct dsr_err *err);
void history_destroy(struct train_history *h);

/* n scored rollouts of one direction were served. */
void history_rollouts(struct train_history *h, bool understanding, const double *rewards, int n);
/* An update was applied: recorded with the rollout tallies since the last
 * one, which start again from zero. */
void history_update(struct train_history *h, long policy_version, bool simpo, int samples,
                    const struct train_stats *stats);
/* The weights became those of `policy_version` (/reload): updates beyond it
 * are no longer in the weights and leave the history (so its versions stay
 * increasing), and the rollout tallies start again. */
void history_reload(struct train_history *h, long policy_version);

/* A consistent copy: updates oldest first (malloc'ed, the caller frees;
 * NULL when n is 0 or out of memory, then n is 0). */
struct history_snapshot {
    struct history_update *updates;
    int n, capacity;
    long recorded;
    struct reward_tally und, gen;
    long und_total, gen_total;
};
int history_snapshot(struct train_history *h, struct history_snapshot *out);

#endif
