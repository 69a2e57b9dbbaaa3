/* The benchmark model and its cost model: a mid-size random Janus config and
 * explicit counts of the work a forward or a decode step does, so measured
 * times can be turned into GFLOP/s and bytes/s.
 *
 * Mid-size config: LM hidden 1024, 12 layers, 16 heads (head_dim 64, no GQA),
 * SwiGLU intermediate 2816, vocabulary 32000, untied lm_head; generation path
 * with a 16384-entry codebook and 576 image tokens (24×24 patches).  The vision
 * tower is shrunk to one tiny layer: it is frozen, not part of the language
 * model being measured, and the benchmarks feed aligner rows directly.
 *
 * Units: FLOPs count a multiply-add as 2; bytes are float32 bytes. */
#ifndef DSR_BENCH_MID_MODEL_H
#define DSR_BENCH_MID_MODEL_H

#include <stddef.h>

#include "io/model_config.h"

/* Special ids of the mid-size config (inside its 32000-token vocabulary). */
#define MID_BOS 1
#define MID_EOS 2
#define MID_PAD 31996
#define MID_EOI 31997
#define MID_BOI 31998
#define MID_IMAGE 31999

void mid_config(struct janus_config *c);

/* Wall-clock seconds from a monotonic clock. */
double bench_now_s(void);

/* GEMM FLOPs of the decoder's projections for one row (all layers). */
double lm_linear_flops_per_row(const struct text_config *t);

/* Attention FLOPs (QKᵀ and PV, causal: only the visible positions) of n new
 * rows appended after `start` cached positions, all layers. */
double lm_attention_flops(const struct text_config *t, int n, int start);

/* Head FLOPs for one scored row: lm_head (text) or generation head (codes). */
double text_head_flops_per_row(const struct janus_config *c);
double code_head_flops_per_row(const struct janus_config *c);

/* Generation aligner FLOPs for one embedded code row. */
double code_embed_flops_per_row(const struct janus_config *c);

/* Bytes of weights a decode step must read once, whatever its batch:
 * decoder layers + final norm, plus the text head or the generation path
 * (aligner + head). */
double lm_layer_weight_bytes(const struct text_config *t);
double text_head_weight_bytes(const struct janus_config *c);
double code_path_weight_bytes(const struct janus_config *c);

/* Bytes of KV cache a decode step reads: one row attending to `len`
 * positions, all layers, keys and values. */
double kv_read_bytes(const struct text_config *t, int len);

#endif
