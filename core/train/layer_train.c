/* Decoder layer training forward/backward (see train_layer.h).
 *
 * Forward (as lm.c):  h1 = rms(x)·wₐ; q,k,v = h1·W{q,k,v}ᵀ; RoPE(q,k);
 *   att = softmax(q kᵀ/√d) v per sequence and head; x2 = x + att·Woᵀ;
 *   h2 = rms(x2)·wₘ; act = silu(h2·Wgᵀ) ⊙ (h2·Wuᵀ); out = x2 + act·Wdᵀ.
 * Backward walks the same steps in reverse.  The attention core
 * (train_attention.h) works on row blocks of one sequence at a time and
 * recomputes the probabilities in the backward instead of storing them, so
 * the scratch is one block's probability/gradient pair for the longest
 * sequence. */
#include "train/layer_train.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn/ops.h"
#include "nn/attention_train.h"

size_t tl_acts_floats(const struct text_config *t, int lora_rank) {
    size_t C = (size_t)t->hidden_size, Q = (size_t)t->n_heads * t->head_dim;
    size_t KV = (size_t)t->n_kv_heads * t->head_dim, M = (size_t)t->intermediate_size;
    return 3 * C + 2 * Q + 2 * KV + 3 * M + LORA_N_LM_TARGETS * (size_t)lora_rank;
}

size_t tl_work_floats(const struct text_config *t, int lora_rank) {
    size_t C = (size_t)t->hidden_size, Q = (size_t)t->n_heads * t->head_dim;
    size_t KV = (size_t)t->n_kv_heads * t->head_dim, M = (size_t)t->intermediate_size;
    /* dh, dq, dk, dv, datt, dgate, dup, rstd, an adapter's du */
    return C + 2 * Q + 2 * KV + 2 * M + 1 + (size_t)lora_rank;
}

size_t tl_scores_floats(int max_seq_len) { return ta_scratch_floats(max_seq_len, TA_BLOCK_ROWS); }

void tl_acts_carve(struct tl_acts *a, float *block, const struct text_config *t, int lora_rank, int T) {
    size_t n = (size_t)T, C = (size_t)t->hidden_size, Q = (size_t)t->n_heads * t->head_dim;
    size_t KV = (size_t)t->n_kv_heads * t->head_dim, M = (size_t)t->intermediate_size;
    a->h1 = block;
    a->q = a->h1 + n * C;
    a->k = a->q + n * Q;
    a->v = a->k + n * KV;
    a->att = a->v + n * KV;
    a->x2 = a->att + n * Q;
    a->h2 = a->x2 + n * C;
    a->gate = a->h2 + n * C;
    a->up = a->gate + n * M;
    a->act = a->up + n * M;
    for (int k = 0; k < LORA_N_LM_TARGETS; k++)
        a->lora_u[k] = lora_rank ? a->act + n * M + (size_t)k * n * (size_t)lora_rank : NULL;
}

/* Attention core over every packed sequence (train_attention.h); q and out
 * rows of sequence sg start at row0[sg] with stride n_heads·head_dim. */
static struct ta_dims attention_dims(const struct text_config *t) {
    struct ta_dims d = {.n_heads = t->n_heads, .n_kv_heads = t->n_kv_heads, .head_dim = t->head_dim,
                        .block_rows = TA_BLOCK_ROWS};
    return d;
}

static void attention_forward_train(const struct text_config *t, const struct tl_segs *s, const float *q,
                                    const float *k, const float *v, float *out, float *scores) {
    struct ta_dims d = attention_dims(t);
    size_t Qs = (size_t)t->n_heads * t->head_dim, KVs = (size_t)t->n_kv_heads * t->head_dim;
    for (int sg = 0; sg < s->n; sg++) {
        size_t r0 = (size_t)s->row0[sg];
        int n = s->row0[sg + 1] - s->row0[sg];
        ta_forward(&d, n, q + r0 * Qs, k + r0 * KVs, v + r0 * KVs, out + r0 * Qs, scores);
    }
}

/* dq (overwritten), dk/dv (accumulated; the caller zeroes them) from d_out. */
static void attention_backward_train(const struct text_config *t, const struct tl_segs *s, const float *q,
                                     const float *k, const float *v, const float *d_out, float *dq, float *dk,
                                     float *dv, float *scores) {
    struct ta_dims d = attention_dims(t);
    size_t Qs = (size_t)t->n_heads * t->head_dim, KVs = (size_t)t->n_kv_heads * t->head_dim;
    for (int sg = 0; sg < s->n; sg++) {
        size_t r0 = (size_t)s->row0[sg];
        int n = s->row0[sg + 1] - s->row0[sg];
        ta_backward(&d, n, q + r0 * Qs, k + r0 * KVs, v + r0 * KVs, d_out + r0 * Qs, dq + r0 * Qs, dk + r0 * KVs,
                    dv + r0 * KVs, scores);
    }
}

int tl_forward(const struct lm_layer *ly, const struct text_config *t, const struct tl_segs *s, const float *x,
               float *out, struct tl_acts *a, float *scores, struct train_prof *prof, struct dsr_err *err) {
    int T = s->row0[s->n], C = t->hidden_size, M = t->intermediate_size;
    op_rmsnorm(a->h1, x, ly->attn_norm, T, C, t->rms_norm_eps);
    if (lm_project(ly, LORA_Q, ly->q_w, ly->q_b, t, a->q, a->h1, T, a->lora_u[LORA_Q], err) ||
        lm_project(ly, LORA_K, ly->k_w, ly->k_b, t, a->k, a->h1, T, a->lora_u[LORA_K], err) ||
        lm_project(ly, LORA_V, ly->v_w, ly->v_b, t, a->v, a->h1, T, a->lora_u[LORA_V], err))
        return -1;
    op_rope_inplace(a->q, s->pos, T, t->n_heads, t->head_dim, t->rope_theta);
    op_rope_inplace(a->k, s->pos, T, t->n_kv_heads, t->head_dim, t->rope_theta);
    double t0 = tp_now();
    attention_forward_train(t, s, a->q, a->k, a->v, a->att, scores);
    tp_add(prof, TP_ATTN_FWD, t0);
    if (lm_project(ly, LORA_O, ly->o_w, ly->o_b, t, a->x2, a->att, T, a->lora_u[LORA_O], err)) return -1;
    op_add_inplace(a->x2, x, (size_t)T * C);
    op_rmsnorm(a->h2, a->x2, ly->mlp_norm, T, C, t->rms_norm_eps);
    if (lm_project(ly, LORA_GATE, ly->gate_w, ly->gate_b, t, a->gate, a->h2, T, a->lora_u[LORA_GATE], err) ||
        lm_project(ly, LORA_UP, ly->up_w, ly->up_b, t, a->up, a->h2, T, a->lora_u[LORA_UP], err))
        return -1;
    op_swiglu(a->act, a->gate, a->up, (size_t)T * M);
    if (lm_project(ly, LORA_DOWN, ly->down_w, ly->down_b, t, out, a->act, T, a->lora_u[LORA_DOWN], err)) return -1;
    op_add_inplace(out, a->x2, (size_t)T * C);
    return 0;
}

/* Backward of lm_project(): gw += dyᵀ in and gb += Σ dy when trainable (non-NULL);
 * din (= when din_beta is 0, += when 1) dy·W; then the adapter's
 * gradients, adding its input gradient to din.  du is [n, rank] scratch. */
static int project_backward(const struct lm_layer *ly, const struct tl_grads *g, enum lora_target k,
                            struct weight w, float *gw, float *gb, const struct text_config *t, const float *in,
                            const float *dy, int n, float *din, float din_beta, const struct tl_acts *a, float *du,
                            struct dsr_err *err) {
    int in_dim, out_dim;
    lm_target_dims(t, k, &in_dim, &out_dim);
    if (gw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, n, 1.0f, dy, out_dim, in, in_dim, 1.0f,
                    gw, in_dim);
    if (gb) {
#pragma omp parallel for if (out_dim > 256)
        for (int o = 0; o < out_dim; o++) {
            double sum = 0;
            for (int r = 0; r < n; r++) sum += dy[(size_t)r * out_dim + o];
            gb[o] += (float)sum;
        }
    }
    if (op_linear_w_backward_input(din, dy, w, n, in_dim, out_dim, din_beta, err)) return -1;
    if (lora_present(&ly->lora[k]))
        lora_backward(in, a->lora_u[k], dy, &ly->lora[k], n, in_dim, out_dim, g->lora_a[k], g->lora_b[k], din, du);
    return 0;
}

int tl_backward(const struct lm_layer *ly, const struct tl_grads *g, const struct text_config *t,
                const struct tl_segs *s, const float *x, const struct tl_acts *a, float *dx, float *work,
                float *scores, struct train_prof *prof, struct dsr_err *err) {
    int T = s->row0[s->n], C = t->hidden_size, M = t->intermediate_size;
    int Q = t->n_heads * t->head_dim, KV = t->n_kv_heads * t->head_dim;
    size_t n = (size_t)T;
    float *dh = work, *dq = dh + n * C, *dk = dq + n * Q, *dv = dk + n * KV, *datt = dv + n * KV;
    float *dgate = datt + n * Q, *dup = dgate + n * M, *rstd = dup + n * M, *du = rstd + n;

    double t0 = tp_now();
    /* MLP block: out = x2 + act·Wdᵀ; dx currently holds d(out) = d(x2) via the residual */
    if (project_backward(ly, g, LORA_DOWN, ly->down_w, g->down_w, g->down_b, t, a->act, dx, T, dgate, 0.0f, a, du,
                         err))
        return -1;
    op_swiglu_backward(a->gate, a->up, dgate, dgate, dup, n * M);
    if (project_backward(ly, g, LORA_GATE, ly->gate_w, g->gate_w, g->gate_b, t, a->h2, dgate, T, dh, 0.0f, a, du,
                         err) ||
        project_backward(ly, g, LORA_UP, ly->up_w, g->up_w, g->up_b, t, a->h2, dup, T, dh, 1.0f, a, du, err))
        return -1;
    t0 = tp_add(prof, TP_MLP_BWD, t0);
    op_rmsnorm_backward(a->x2, ly->mlp_norm, dh, T, C, t->rms_norm_eps, dx, g->mlp_norm, rstd);
    t0 = tp_add(prof, TP_NORM_BWD, t0);

    /* attention block: x2 = x + att·Woᵀ; dx now holds d(x2) */
    if (project_backward(ly, g, LORA_O, ly->o_w, g->o_w, g->o_b, t, a->att, dx, T, datt, 0.0f, a, du, err))
        return -1;
    memset(dk, 0, n * KV * sizeof(float));
    memset(dv, 0, n * KV * sizeof(float));
    t0 = tp_add(prof, TP_ATTN_PROJ_BWD, t0);
    attention_backward_train(t, s, a->q, a->k, a->v, datt, dq, dk, dv, scores);
    t0 = tp_add(prof, TP_ATTN_BWD, t0);
    op_rope_backward_inplace(dq, s->pos, T, t->n_heads, t->head_dim, t->rope_theta);
    op_rope_backward_inplace(dk, s->pos, T, t->n_kv_heads, t->head_dim, t->rope_theta);
    if (project_backward(ly, g, LORA_Q, ly->q_w, g->q_w, g->q_b, t, a->h1, dq, T, dh, 0.0f, a, du, err) ||
        project_backward(ly, g, LORA_K, ly->k_w, g->k_w, g->k_b, t, a->h1, dk, T, dh, 1.0f, a, du, err) ||
        project_backward(ly, g, LORA_V, ly->v_w, g->v_w, g->v_b, t, a->h1, dv, T, dh, 1.0f, a, du, err))
        return -1;
    t0 = tp_add(prof, TP_ATTN_PROJ_BWD, t0);
    op_rmsnorm_backward(x, ly->attn_norm, dh, T, C, t->rms_norm_eps, dx, g->attn_norm, rstd);
    tp_add(prof, TP_NORM_BWD, t0);
    return 0;
}
