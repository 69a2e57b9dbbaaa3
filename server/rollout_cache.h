/* Recent rollouts, so /update can cite a sample by id: everything a GRPO
 * step needs to rebuild it (task, context tokens, the vision tower's
 * features of the seen image, the completion, its old log-probs).
 *
 * Bounded by entry count and by bytes; least recently used entries are
 * evicted first (a lookup refreshes an entry).  The rollouts of one group
 * share their context and image features through a reference-counted
 * block.  Owned and used by the compute worker only: no locking. */
#ifndef DSRD_ROLLOUT_CACHE_H
#define DSRD_ROLLOUT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define ROLLOUT_ID_LEN 37 /* UUID text + NUL */

/* Shared by the rollouts of one group. */
struct rollout_shared {
    int refs;
    bool understanding;
    int32_t *context;
    int n_context;
    float *features;      /* [n_feature_rows, vision hidden] or NULL */
    int n_feature_rows;
    size_t bytes;
};

struct rollout_entry {
    char id[ROLLOUT_ID_LEN];
    struct rollout_shared *shared;
    int32_t *completion;
    float *old_logprobs;
    int n;
    size_t bytes;
    struct rollout_entry *prev, *next; /* LRU list, most recent at head */
    struct rollout_entry *hnext;       /* hash chain */
};

struct rollout_cache {
    struct rollout_entry **buckets;
    size_t n_buckets;
    struct rollout_entry *head, *tail;
    int count, max_count;
    size_t bytes, max_bytes;
    long evicted;         /* total evictions (metrics) */
};

int  rollout_cache_init(struct rollout_cache *c, int max_count, size_t max_bytes, struct dsr_err *err);
void rollout_cache_free(struct rollout_cache *c);

/* A new shared block owning copies of context and features, holding one
 * reference for the caller (drop it with rollout_shared_unref once the
 * group's entries are added; the last reference frees the block). */
struct rollout_shared *rollout_shared_new(bool understanding, const int32_t *context, int n_context,
                                          const float *features, int n_feature_rows, int feature_dim);
void rollout_shared_unref(struct rollout_shared *sh);

/* Adds a rollout (copies completion and logprobs; takes a reference on
 * sh), generating its UUID into id_out; evicts the least recently used
 * entries to stay within bounds. */
int rollout_cache_add(struct rollout_cache *c, struct rollout_shared *sh, const int32_t *completion,
                      const float *logprobs, int n, char id_out[ROLLOUT_ID_LEN], struct dsr_err *err);

/* The entry for id, refreshed as most recent; NULL when unknown or evicted. */
const struct rollout_entry *rollout_cache_get(struct rollout_cache *c, const char *id);

#endif
