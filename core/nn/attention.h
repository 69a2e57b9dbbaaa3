/* Causal grouped-query attention of packed new rows against KV-cache slots.
 *
 * q is [T, n_heads · head_dim] (after RoPE) for the new rows of all segments
 * in order; segment s's rows sit at positions cache->len[slot] ... + n - 1
 * and attend to every cached position up to and including their own (the
 * caller has already written their keys/values into the cache).  Query head
 * h reads kv head h / (n_heads / n_kv_heads).  out is [T, n_heads · head_dim].
 *
 * Long segments use sgemm for Q·Kᵀ and P·V; short ones (decode steps) and
 * segments that read a shared prefix (kv_cache_share_prefix) go through
 * attention_decode.h, which reads each shared prefix once per group.  Both
 * accumulate softmax denominators in double. */
#ifndef DSR_ATTENTION_H
#define DSR_ATTENTION_H

#include "base/error.h"
#include "nn/kv_cache.h"

int attention_forward(const float *q, const struct kv_cache *cache, int layer, const struct lm_segment *segs,
                      int n_segs, int n_heads, int n_kv_heads, int head_dim, float *out, struct dsr_err *err);

#endif
