/* Key/value cache for incremental decoding.
 *
 * One cache holds n_slots independent sequences (a slot per row of a batch:
 * a rollout in a group, a CFG branch).  Layout per slot, per layer, per KV
 * head: K and V as [max_len, head_dim] float32, keys stored after RoPE.  Head
 * major, so one head's keys over all positions are contiguous: attention
 * reads them as one stream (a [max_len, kv_dim] row layout would give it
 * head_dim floats out of every kv_dim, a page apart at Janus sizes).
 * len[slot] counts the positions written; the LM forward appends to it.
 * Memory: 2 · n_slots · n_layers · max_len · kv_dim floats (kv_dim =
 * n_kv_heads · head_dim), allocated once by kv_cache_init, owned by the struct.
 *
 * Shared prefixes: the members of a rollout group start from one prefill.
 * Instead of copying it, kv_cache_share_prefix makes a slot read its first
 * prefix_len[slot] positions from slot prefix_slot[slot]'s storage (a prefix
 * slot reads its own: prefix_slot[s] == s).  New positions are always written
 * to the slot's own storage at their own index, so the pages below the prefix
 * are never touched and cost address space only, and attention can read a
 * shared prefix once for the whole group (attention.h). */
#ifndef DSR_KV_CACHE_H
#define DSR_KV_CACHE_H

#include <stddef.h>

#include "base/error.h"

struct kv_cache {
    int n_slots, n_layers, max_len, n_kv_heads, head_dim, kv_dim;
    float *k, *v; /* [n_slots][n_layers][n_kv_heads][max_len][head_dim] */
    int *len;     /* [n_slots] positions filled */
    int *prefix_slot; /* [n_slots] whose storage holds positions < prefix_len */
    int *prefix_len;  /* [n_slots] 0 when the slot reads only its own storage */
};

int  kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int n_kv_heads, int head_dim,
                   struct dsr_err *err);
void kv_cache_free(struct kv_cache *c);

/* Slot's own K (or V) of one layer and KV head: [max_len, head_dim], indexed
 * by position; positions below prefix_len[slot] live in prefix_slot[slot]'s
 * storage. */
float *kv_cache_k(const struct kv_cache *c, int slot, int layer, int kv_head);
float *kv_cache_v(const struct kv_cache *c, int slot, int layer, int kv_head);

/* Writes n positions from pos on of slot's layer from packed rows k_rows,
 * v_rows [n, kv_dim] (the projections' output: head after head in a row). */
void kv_cache_write(struct kv_cache *c, int slot, int layer, int pos, const float *k_rows, const float *v_rows, int n);

/* Slot dst (empty, dst != src) continues from the first len[src] positions
 * of slot src without copying them: a group's shared prefill fanned out to its
 * members.  src must own all its positions (prefix_slot[src] == src); it is
 * marked as the prefix of that length, so dst and src read it as one group.
 * Fails on a bad slot, a non-empty dst or a src that reads another's prefix. */
int kv_cache_share_prefix(struct kv_cache *c, int dst, int src, struct dsr_err *err);

/* Forgets slot's contents (len = 0) and its prefix.  Slots sharing this
 * slot's prefix must be reset first. */
void kv_cache_reset_slot(struct kv_cache *c, int slot);

size_t kv_cache_bytes(int n_slots, int n_layers, int max_len, int kv_dim);

/* A run of n new tokens of one sequence; their positions continue from the
 * slot's current cache length. */
struct lm_segment {
    int slot;
    int n;
};

#endif
