/* The Llama language model at the centre of Janus: token embeddings,
 * n decoder layers (RMSNorm → GQA attention with RoPE → residual, RMSNorm →
 * SwiGLU MLP → residual), final RMSNorm, lm_head (tied to embed_tokens when
 * the checkpoint has no lm_head or the config ties them).
 *
 * The forward pass works on packed rows: the new tokens of several sequences
 * are concatenated into one [T, hidden] matrix so every projection is a single
 * GEMM over all of them; attention runs per sequence against that sequence's
 * KV-cache slot.  A full teacher-forced sequence, a prefill and a one-token
 * decode step are all the same call with different segment lengths.
 *
 * Ownership: lm_bind() stores pointers into the param_table (which must
 * outlive the lm_model) plus a malloc'ed layer array freed by lm_release(). */
#ifndef DSR_LM_H
#define DSR_LM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/kv_cache.h"
#include "nn/lora.h"
#include "io/model_config.h"
#include "model/params.h"

/* Matrices are struct weight (float32 or BF16 storage, nn/weight.h);
 * training reads their .f32 (the table is promoted to float32 first). */
struct lm_layer {
    const float *attn_norm;                   /* [C] */
    struct weight q_w, k_w, v_w, o_w;         /* [H·hd, C], [KV·hd, C] ×2, [C, H·hd] */
    const float *q_b, *k_b, *v_b, *o_b;       /* NULL unless attention_bias */
    const float *mlp_norm;                    /* [C] */
    struct weight gate_w, up_w, down_w;       /* [I, C], [I, C], [C, I] */
    const float *gate_b, *up_b, *down_b;      /* NULL unless mlp_bias */
    struct lora lora[LORA_N_LM_TARGETS];         /* adapters by enum lora_target (.a NULL: none) */
};

struct lm_model {
    struct text_config cfg;
    struct weight embed_tokens; /* [V, C] */
    const float *final_norm;    /* [C] */
    struct weight lm_head;      /* [V, C]; == embed_tokens when tied */
    bool tied;
    struct lm_layer *layers;   /* [n_layers], owned */
    int lora_rank;              /* 0 without adapters */
};

/* A projection's [in, out] dimensions (the shape of its adapter's input
 * and output). */
void lm_target_dims(const struct text_config *t, enum lora_target target, int *in_dim, int *out_dim);

/* Declares the LM tensors: all trainable, or, with adapters (lora non-NULL,
 * rank > 0), all frozen (the adapter factors, "<projection>.lora_A.weight"
 * for each targeted projection of every layer, are declared by janus_model
 * and bound by lm_bind).  lm_head is declared unless tied. */
int  lm_declare(const struct janus_config *c, bool tied, const struct lora_config *lora, struct param_table *pt,
                struct dsr_err *err);
int  lm_bind(const struct janus_config *c, bool tied, const struct lora_config *lora, const struct param_table *pt,
             struct lm_model *out, struct dsr_err *err);
void lm_release(struct lm_model *m);

/* out[n, C] = embed_tokens[ids[i]]; fails on an id outside the vocabulary. */
int lm_embed_tokens(const struct lm_model *m, const int32_t *ids, int n, float *out, struct dsr_err *err);

/* Runs the decoder over the packed rows embeds[T, C] (T = Σ segs[i].n, rows
 * in segment order), appending each segment's keys/values to its cache slot,
 * and writes the final-normed hidden states to hidden[T, C].  Segments must
 * name distinct slots with room for their tokens. */
int lm_forward(const struct lm_model *m, struct kv_cache *cache, const struct lm_segment *segs, int n_segs,
               const float *embeds, float *hidden, struct dsr_err *err);

/* lm_forward split by segments into `teams` independent teams, one thread
 * each, rows balanced (1: one team with every thread on each product).
 * Why: a decode step's rows are independent through the whole stack, so
 * per-thread teams need no barrier between the layers' products and one
 * team's bandwidth-bound attention overlaps the other's compute-bound
 * projections, at the price of each team streaming the weights itself.
 * lm_forward uses it for decode steps (one row per segment) of at least
 * LM_TEAM_MIN_ROWS rows per thread when the projections are BF16.  Results
 * differ from one team's in rounding only (a product's rows are summed
 * alike; decode attention blocks rows by 8). */
#define LM_TEAM_MIN_ROWS 8
#define LM_MAX_TEAMS 64
int lm_forward_teams(const struct lm_model *m, struct kv_cache *cache, const struct lm_segment *segs, int n_segs,
                     const float *embeds, float *hidden, int teams, struct dsr_err *err);

/* One projection of a layer: out[T, out] = in[T, in] · wᵀ (+ b), plus the
 * target's adapter term when the layer has one (its x·Aᵀ left in u,
 * [T, rank], for a backward). */
int lm_project(const struct lm_layer *ly, enum lora_target target, struct weight w, const float *b,
               const struct text_config *t, float *out, const float *in, int T, float *u, struct dsr_err *err);

/* logits[n, V] = hidden[n, C] · lm_headᵀ; fails only when a BF16 head's
 * widening buffer cannot be allocated. */
int lm_logits(const struct lm_model *m, const float *hidden, int n, float *logits, struct dsr_err *err);

#endif
