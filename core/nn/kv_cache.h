/* Key/value cache for incremental decoding.
 *
 * One cache holds n_slots independent sequences (a slot per row of a batch:
 * a rollout in a group, a CFG branch).  Layout per slot, per layer, per KV
 * head: K and V as [max_len, head_dim], keys stored after RoPE.  Head
 * major, so one head's keys over all positions are contiguous: attention
 * reads them as one stream (a [max_len, kv_dim] row layout would give it
 * head_dim floats out of every kv_dim, a page apart at Janus sizes).
 * len[slot] counts the positions written; the LM forward appends to it.
 *
 * Element type (enum kv_dtype): float32, or BF16 (rounded to nearest even
 * on write, widened exactly on read): half the memory and half the bytes a
 * decode step streams from it, at BF16 rounding of K and V (rollouts only:
 * dsrd's --kv-dtype; scoring keeps float32).  Memory: 2 · n_slots · n_layers
 * · max_len · kv_dim elements (kv_dim = n_kv_heads · head_dim), allocated
 * once by kv_cache_init, owned by the struct; pages are touched as written.
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
#include <stdint.h>

#include "base/error.h"

enum kv_dtype { KV_F32, KV_BF16 };

/* "float32" | "bf16" (as GET /model reports it) */
const char *kv_dtype_name(enum kv_dtype d);

struct kv_cache {
    int n_slots, n_layers, max_len, n_kv_heads, head_dim, kv_dim;
    enum kv_dtype dtype;
    /* [n_slots][n_layers][n_kv_heads][max_len][head_dim]: k, v for KV_F32,
     * k16, v16 (BF16 bit patterns) for KV_BF16; the other pair is NULL */
    float *k, *v;
    uint16_t *k16, *v16;
    int *len;     /* [n_slots] positions filled */
    int *prefix_slot; /* [n_slots] whose storage holds positions < prefix_len */
    int *prefix_len;  /* [n_slots] 0 when the slot reads only its own storage */
};

int  kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int n_kv_heads, int head_dim,
                   enum kv_dtype dtype, struct dsr_err *err);
void kv_cache_free(struct kv_cache *c);

/* Positions [j0, j1) of slot's own K (values: V) of one layer and KV head
 * as float32 rows [j1 - j0, head_dim]: a pointer into a KV_F32 cache, or
 * the BF16 rows widened into buf (caller-owned, (j1 - j0) · head_dim
 * floats) and buf returned.  Positions below prefix_len[slot] live in
 * prefix_slot[slot]'s storage: read them from that slot. */
enum kv_part { KV_KEYS, KV_VALUES };
const float *kv_cache_rows(const struct kv_cache *c, enum kv_part part, int slot, int layer, int kv_head, int j0,
                           int j1, float *buf);

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

size_t kv_cache_bytes(int n_slots, int n_layers, int max_len, int kv_dim, enum kv_dtype dtype);

/* A run of n new tokens of one sequence; their positions continue from the
 * slot's current cache length. */
struct lm_segment {
    int slot;
    int n;
};

#endif
