/* Attention for short segments (decode steps): a few new rows per sequence,
 * each against its sequence's whole KV cache.  Internal to attention.c.
 *
 * Work is grouped by shared prefix (kv_cache_share_prefix): the rows of all
 * slots that read the same prefix of the same slot form one group, and for
 * every (group, head) the prefix's keys and values are streamed once for all
 * the group's rows; each row's own positions after the prefix are read from
 * its slot.  A G-member caption group therefore reads the image prefill once
 * per step instead of G times.
 *
 * q, out: [T, n_heads · head_dim] packed rows as in attention_forward;
 * row0[s]: first row of segment s; only segments with short[s] nonzero are
 * computed.  Softmax denominators accumulate in double (op_softmax_row). */
#ifndef DSR_ATTENTION_DECODE_H
#define DSR_ATTENTION_DECODE_H

#include "base/error.h"
#include "nn/kv_cache.h"

/* DECODE_ISA_AUTO: the x86 vector paths for blocks of 8 rows where the CPU
 * has them (AVX2 scores, AVX-512 prefix values); DECODE_ISA_PORTABLE: the
 * compiler-vectorised loops only.  Both give bit-identical results (tests
 * compare them). */
enum decode_isa { DECODE_ISA_AUTO, DECODE_ISA_PORTABLE };

int attention_decode(const float *q, const struct kv_cache *cache, int layer, const struct lm_segment *segs,
                     const int *row0, const unsigned char *is_short, int n_segs, int n_heads, int n_kv_heads,
                     int head_dim, enum decode_isa isa, float *out, struct dsr_err *err);

#endif
