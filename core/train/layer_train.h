/* Training forward and backward of one Llama decoder layer over packed rows
 * of several independent sequences (causal attention within each sequence
 * only, positions restarting at 0 in each), without a KV cache.
 *
 * The trainer stores only each layer's input; tl_forward() recomputes the
 * layer's internals (struct tl_acts) right before tl_backward() needs them.
 * All buffers are caller-owned: tl_acts_floats() and tl_work_floats() give
 * their sizes per row; tl_scores_floats() the attention scratch of the
 * longest sequence.  Weight gradients accumulate (+=). */
#ifndef DSR_TRAIN_LAYER_H
#define DSR_TRAIN_LAYER_H

#include <stddef.h>

#include "model/lm.h"
#include "train/train_prof.h"

/* Sequences packed row after row: sequence s is rows [row0[s], row0[s+1]). */
struct tl_segs {
    int n;
    const int *row0; /* [n + 1] */
    const int *pos;  /* [T] position of each row within its sequence */
};

/* A layer's internals over T rows (pointers into one caller block);
 * lora_u[k] is adapter k's x·Aᵀ [T, rank] (NULL without adapters). */
struct tl_acts {
    float *h1, *q, *k, *v, *att, *x2, *h2, *gate, *up, *act;
    float *lora_u[LORA_N_LM_TARGETS];
};

/* Gradient tensors of one layer, same shapes as struct lm_layer (NULL when
 * the layer has no such tensor, or it is frozen: with LoRA only the adapter
 * gradients are set, and the backward then runs no weight-gradient GEMM for
 * the frozen base, only the input gradient through it). */
struct tl_grads {
    float *attn_norm, *q_w, *k_w, *v_w, *o_w, *q_b, *k_b, *v_b, *o_b;
    float *mlp_norm, *gate_w, *up_w, *down_w, *gate_b, *up_b, *down_b;
    float *lora_a[LORA_N_LM_TARGETS], *lora_b[LORA_N_LM_TARGETS]; /* adapter gradients, by enum lora_target */
};

/* lora_rank: the adapters' rank, 0 without. */
size_t tl_acts_floats(const struct text_config *t, int lora_rank); /* per row */
size_t tl_work_floats(const struct text_config *t, int lora_rank); /* per row, backward only */
size_t tl_scores_floats(int max_seq_len);
void   tl_acts_carve(struct tl_acts *a, float *block, const struct text_config *t, int lora_rank, int T);

/* out[T, C] = layer(x[T, C]) (out may not alias x); fills a.  prof (may be
 * NULL) receives the attention core's time (TP_ATTN_FWD).  Weights may be
 * BF16 (frozen under LoRA); -1 only when widening one cannot allocate. */
int tl_forward(const struct lm_layer *ly, const struct text_config *t, const struct tl_segs *s, const float *x,
               float *out, struct tl_acts *a, float *scores, struct train_prof *prof, struct dsr_err *err);

/* dx[T, C]: on entry the gradient of the layer's output, on return that of
 * its input x.  a must hold tl_forward's internals for this x.  prof (may be
 * NULL) receives the backward's phase times.  -1 as tl_forward. */
int tl_backward(const struct lm_layer *ly, const struct tl_grads *g, const struct text_config *t,
                const struct tl_segs *s, const float *x, const struct tl_acts *a, float *dx, float *work,
                float *scores, struct train_prof *prof, struct dsr_err *err);

#endif
