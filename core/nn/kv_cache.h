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
 * · max_len · kv_dim elements (kv_dim = n_kv_heads · head_dim; less with
 * kv_cache_init_shared, below), allocated once at init, owned by the struct;
 * pages are touched as written.
 *
 * Shared prefixes: the members of a rollout group start from one prefill.
 * Instead of copying it, kv_cache_share_prefix makes a slot read its first
 * prefix_len[slot] positions from slot prefix_slot[slot]'s storage (a prefix
 * slot reads its own: prefix_slot[s] == s), and attention can read a shared
 * prefix once for the whole group (attention.h).  New positions are always
 * written to the slot's own storage.  A cache made by kv_cache_init_shared
 * gives its member slots storage for the positions after the prefix only:
 * a group of G over a P-position prefill with N new positions each holds
 * P + G·N positions per layer instead of G·(P + N), and a step's new
 * positions fault in pages that the group actually uses (with whole-length
 * slots, each member's 2 MiB pages span the unused prefix range too). */
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
    /* slots < n_roots store positions 0 .. max_len-1; the others (members,
     * kv_cache_init_shared) shared_len .. max_len-1 only */
    int n_roots, shared_len;
    int *len;     /* [n_slots] positions filled */
    int *prefix_slot; /* [n_slots] whose storage holds positions < prefix_len */
    int *prefix_len;  /* [n_slots] 0 when the slot reads only its own storage */
};

int  kv_cache_init(struct kv_cache *c, int n_slots, int n_layers, int max_len, int n_kv_heads, int head_dim,
                   enum kv_dtype dtype, struct dsr_err *err);
void kv_cache_free(struct kv_cache *c);

/* A cache for groups that continue from shared prefills: slots 0 ..
 * n_roots-1 hold whole sequences (the prefills); slots n_roots .. n_slots-1
 * hold positions shared_len .. max_len-1 only and must continue from a
 * root's prefix of exactly shared_len positions (kv_cache_share_prefix)
 * before anything is written to them.  1 ≤ n_roots ≤ n_slots, 0 ≤
 * shared_len < max_len; kv_cache_init is n_roots = n_slots. */
int kv_cache_init_shared(struct kv_cache *c, int n_slots, int n_roots, int shared_len, int n_layers, int max_len,
                         int n_kv_heads, int head_dim, enum kv_dtype dtype, struct dsr_err *err);

/* The first position slot's own storage holds: 0, or shared_len for a
 * member slot of a shared cache. */
int kv_cache_first_position(const struct kv_cache *c, int slot);

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
 * members.  src must own all its positions (prefix_slot[src] == src, and a
 * root of a shared cache); it is marked as the prefix of that length, so dst
 * and src read it as one group.  Fails on a bad slot, a non-empty dst, a src
 * that reads another's prefix, or a member dst whose storage starts at
 * another position than len[src]. */
int kv_cache_share_prefix(struct kv_cache *c, int dst, int src, struct dsr_err *err);

/* Forgets slot's contents (len = 0) and its prefix.  Slots sharing this
 * slot's prefix must be reset first. */
void kv_cache_reset_slot(struct kv_cache *c, int slot);

/* Bytes of K and V storage of a kv_cache_init cache; and of c itself. */
size_t kv_cache_bytes(int n_slots, int n_layers, int max_len, int kv_dim, enum kv_dtype dtype);
size_t kv_cache_storage_bytes(const struct kv_cache *c);

/* A run of n new tokens of one sequence; their positions continue from the
 * slot's current cache length. */
struct lm_segment {
    int slot;
    int n;
};

#endif
