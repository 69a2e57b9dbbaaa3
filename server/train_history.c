#include "train_history.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int history_init(struct train_history *h, int capacity, struct dsr_err *err) {
    memset(h, 0, sizeof *h);
    if (capacity < 1) return dsr_errf(err, "the stats history needs room for at least one update");
    h->ring = calloc((size_t)capacity, sizeof *h->ring);
    if (!h->ring) return dsr_errf(err, "out of memory for a stats history of %d updates", capacity);
    h->cap = capacity;
    pthread_mutex_init(&h->mu, NULL);
    return 0;
}

void history_destroy(struct train_history *h) {
    if (!h->ring) return;
    pthread_mutex_destroy(&h->mu);
    free(h->ring);
    memset(h, 0, sizeof *h);
}

static void tally_add(struct reward_tally *t, double r) {
    if (t->count == 0 || r < t->min) t->min = r;
    if (t->count == 0 || r > t->max) t->max = r;
    t->sum += r;
    t->count++;
}

void history_rollouts(struct train_history *h, bool understanding, const double *rewards, int n) {
    pthread_mutex_lock(&h->mu);
    struct reward_tally *t = understanding ? &h->und : &h->gen;
    for (int i = 0; i < n; i++) tally_add(t, rewards[i]);
    *(understanding ? &h->und_total : &h->gen_total) += n;
    pthread_mutex_unlock(&h->mu);
}

void history_update(struct train_history *h, long policy_version, bool simpo, int samples,
                    const struct train_stats *stats) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&h->mu);
    int slot = (h->start + h->n) % h->cap;
    if (h->n == h->cap) h->start = (h->start + 1) % h->cap; /* the oldest makes room */
    else h->n++;
    h->ring[slot] = (struct history_update){.policy_version = policy_version,
                                            .time = (double)now.tv_sec + now.tv_nsec * 1e-9,
                                            .simpo = simpo,
                                            .samples = samples,
                                            .stats = *stats,
                                            .und = h->und,
                                            .gen = h->gen};
    memset(&h->und, 0, sizeof h->und);
    memset(&h->gen, 0, sizeof h->gen);
    h->recorded++;
    pthread_mutex_unlock(&h->mu);
}

void history_reload(struct train_history *h, long policy_version) {
    pthread_mutex_lock(&h->mu);
    while (h->n > 0 && h->ring[(h->start + h->n - 1) % h->cap].policy_version > policy_version) h->n--;
    memset(&h->und, 0, sizeof h->und);
    memset(&h->gen, 0, sizeof h->gen);
    pthread_mutex_unlock(&h->mu);
}

int history_snapshot(struct train_history *h, struct history_snapshot *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->mu);
    int rc = 0;
    if (h->n > 0 && !(out->updates = malloc((size_t)h->n * sizeof *out->updates))) rc = -1;
    for (int i = 0; out->updates && i < h->n; i++) out->updates[i] = h->ring[(h->start + i) % h->cap];
    out->n = out->updates ? h->n : 0;
    out->capacity = h->cap;
    out->recorded = h->recorded;
    out->und = h->und;
    out->gen = h->gen;
    out->und_total = h->und_total;
    out->gen_total = h->gen_total;
    pthread_mutex_unlock(&h->mu);
    return rc;
}
