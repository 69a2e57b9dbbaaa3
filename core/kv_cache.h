/* Key/value cache for incremental decoding.
 *
 * One cache holds n_slots independent sequences (a slot per row of a batch:
 * a rollout in a group, a CFG branch).  Layout per slot, per layer:
 * K and V as [max_len, kv_dim] float32 (kv_dim = n_kv_heads · head_dim), keys
 * stored after RoPE.  len[slot] counts the positions written; the LM forward
 * appends to it.  Memory: 2 · n_slots · n_layers · max_len · kv_dim floats,
 * allocated once by kv_cache_init and owned by the struct. */
#ifndef DSR_KV_CACHE_H
#define DSR_KV_CACHE_H

#include <stddef.h>

#include "error.h"

struct kv_cache {
    int n_slots, n_layers, max_len, kv_dim;
    float *k, *v; /* [n_slots][n_layers][max_len][kv_dim] */
    int *len;     /* [n_slots] positions filled */
};

int  kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int kv_dim, struct dsr_err *err);
void kv_cache_free(struct kv_cache *c);

/* Start of slot's K (or V) rows for one layer. */
float *kv_cache_k(const struct kv_cache *c, int slot, int layer);
float *kv_cache_v(const struct kv_cache *c, int slot, int layer);

/* Copies the first len[src] positions of slot src into dst (a group's shared
 * prefill fanned out to its members). */
void kv_cache_copy_slot(struct kv_cache *c, int dst, int src);

/* Forgets slot's contents (len = 0). */
void kv_cache_reset_slot(struct kv_cache *c, int slot);

size_t kv_cache_bytes(int n_slots, int n_layers, int max_len, int kv_dim);

#endif
