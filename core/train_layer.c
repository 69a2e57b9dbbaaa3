/* Decoder layer training forward/backward (see train_layer.h).
 *
 * Forward (as lm.c):  h1 = rms(x)·wₐ; q,k,v = h1·W{q,k,v}ᵀ; RoPE(q,k);
 *   att = softmax(q kᵀ/√d) v per sequence and head; x2 = x + att·Woᵀ;
 *   h2 = rms(x2)·wₘ; act = silu(h2·Wgᵀ) ⊙ (h2·Wuᵀ); out = x2 + act·Wdᵀ.
 * Backward walks the same steps in reverse.  Attention probabilities are
 * recomputed per (sequence, head) in the backward instead of being stored,
 * so the scratch is one n×n matrix pair for the longest sequence. */
#include "train_layer.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ops.h"

size_t tl_acts_floats(const struct text_config *t) {
    size_t C = (size_t)t->hidden_size, Q = (size_t)t->n_heads * t->head_dim;
    size_t KV = (size_t)t->n_kv_heads * t->head_dim, M = (size_t)t->intermediate_size;
    return 3 * C + 2 * Q + 2 * KV + 3 * M;
}

size_t tl_work_floats(const struct text_config *t) {
    size_t C = (size_t)t->hidden_size, Q = (size_t)t->n_heads * t->head_dim;
    size_t KV = (size_t)t->n_kv_heads * t->head_dim, M = (size_t)t->intermediate_size;
    /* dh, dq, dk, dv, datt, dgate, dup, rstd */
    return C + 2 * Q + 2 * KV + 2 * M + 1;
}

size_t tl_scores_floats(int max_seq_len) { return 2 * (size_t)max_seq_len * (size_t)max_seq_len; }

void tl_acts_carve(struct tl_acts *a, float *block, const struct text_config *t, int T) {
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
}

/* P = causal softmax(scale · q_h k_hᵀ) for one sequence of n rows. */
static void attention_probs(const float *q, const float *k, int n, int q_stride, int kv_stride, int head_dim,
                            float scale, float *P) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, head_dim, scale, q, q_stride, k, kv_stride, 0.0f, P,
                n);
    /* serial: per-head work is small, and an OpenMP region between two BLAS
     * calls costs a thread hand-over each time */
    for (int i = 0; i < n; i++) {
        float *row = P + (size_t)i * n;
        op_softmax_row(row, i + 1);
        for (int j = i + 1; j < n; j++) row[j] = 0.0f;
    }
}

static void attention_forward_train(const struct text_config *t, const struct tl_segs *s, const float *q,
                                    const float *k, const float *v, float *out, float *scores) {
    int hd = t->head_dim, Qs = t->n_heads * hd, KVs = t->n_kv_heads * hd, group = t->n_heads / t->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    for (int sg = 0; sg < s->n; sg++) {
        int r0 = s->row0[sg], n = s->row0[sg + 1] - r0;
        for (int h = 0; h < t->n_heads; h++) {
            size_t qo = (size_t)r0 * Qs + (size_t)h * hd, ko = (size_t)r0 * KVs + (size_t)(h / group) * hd;
            attention_probs(q + qo, k + ko, n, Qs, KVs, hd, scale, scores);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, n, 1.0f, scores, n, v + ko, KVs, 0.0f,
                        out + qo, Qs);
        }
    }
}

/* dq (overwritten), dk/dv (accumulated over the heads of each KV group; the
 * caller zeroes them) from d_out. */
static void attention_backward_train(const struct text_config *t, const struct tl_segs *s, const float *q,
                                     const float *k, const float *v, const float *d_out, float *dq, float *dk,
                                     float *dv, float *scores) {
    int hd = t->head_dim, Qs = t->n_heads * hd, KVs = t->n_kv_heads * hd, group = t->n_heads / t->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    for (int sg = 0; sg < s->n; sg++) {
        int r0 = s->row0[sg], n = s->row0[sg + 1] - r0;
        float *P = scores, *dS = scores + (size_t)n * n;
        for (int h = 0; h < t->n_heads; h++) {
            size_t qo = (size_t)r0 * Qs + (size_t)h * hd, ko = (size_t)r0 * KVs + (size_t)(h / group) * hd;
            attention_probs(q + qo, k + ko, n, Qs, KVs, hd, scale, P);
            /* dV += Pᵀ dO;  dP = dO Vᵀ */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hd, n, 1.0f, P, n, d_out + qo, Qs, 1.0f, dv + ko,
                        KVs);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, hd, 1.0f, d_out + qo, Qs, v + ko, KVs, 0.0f,
                        dS, n);
            /* softmax backward: dS = P ⊙ (dP − Σⱼ P dP), row by row over the visible part */
            for (int i = 0; i < n; i++) { /* serial, as in attention_probs */
                float *p = P + (size_t)i * n, *d = dS + (size_t)i * n;
                double dot = 0;
                for (int j = 0; j <= i; j++) dot += (double)p[j] * d[j];
                for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - (float)dot);
                for (int j = i + 1; j < n; j++) d[j] = 0.0f;
            }
            /* dQ = scale · dS K;  dK += scale · dSᵀ Q */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, n, scale, dS, n, k + ko, KVs, 0.0f, dq + qo,
                        Qs);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hd, n, scale, dS, n, q + qo, Qs, 1.0f, dk + ko,
                        KVs);
        }
    }
}

void tl_forward(const struct lm_layer *ly, const struct text_config *t, const struct tl_segs *s, const float *x,
                float *out, struct tl_acts *a, float *scores, struct train_prof *prof) {
    int T = s->row0[s->n], C = t->hidden_size, M = t->intermediate_size;
    int Q = t->n_heads * t->head_dim, KV = t->n_kv_heads * t->head_dim;
    op_rmsnorm(a->h1, x, ly->attn_norm, T, C, t->rms_norm_eps);
    op_linear(a->q, a->h1, ly->q_w, ly->q_b, T, C, Q);
    op_linear(a->k, a->h1, ly->k_w, ly->k_b, T, C, KV);
    op_linear(a->v, a->h1, ly->v_w, ly->v_b, T, C, KV);
    op_rope_inplace(a->q, s->pos, T, t->n_heads, t->head_dim, t->rope_theta);
    op_rope_inplace(a->k, s->pos, T, t->n_kv_heads, t->head_dim, t->rope_theta);
    double t0 = tp_now();
    attention_forward_train(t, s, a->q, a->k, a->v, a->att, scores);
    tp_add(prof, TP_ATTN_FWD, t0);
    op_linear(a->x2, a->att, ly->o_w, ly->o_b, T, Q, C);
    op_add_inplace(a->x2, x, (size_t)T * C);
    op_rmsnorm(a->h2, a->x2, ly->mlp_norm, T, C, t->rms_norm_eps);
    op_linear(a->gate, a->h2, ly->gate_w, ly->gate_b, T, C, M);
    op_linear(a->up, a->h2, ly->up_w, ly->up_b, T, C, M);
    size_t n = (size_t)T * M;
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) a->act[i] = a->gate[i] / (1.0f + expf(-a->gate[i])) * a->up[i];
    op_linear(out, a->act, ly->down_w, ly->down_b, T, M, C);
    op_add_inplace(out, a->x2, (size_t)T * C);
}

void tl_rmsnorm_backward(const float *x, const float *w, const float *dy, int n, int dim, float eps, float *dx,
                         float *dw, float *rstd) {
#pragma omp parallel for if (n > 16)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim, *dyr = dy + (size_t)r * dim;
        float *dxr = dx + (size_t)r * dim;
        double ss = 0, gx = 0;
        for (int j = 0; j < dim; j++) {
            ss += (double)xr[j] * xr[j];
            gx += (double)dyr[j] * w[j] * xr[j];
        }
        double rs = 1.0 / sqrt(ss / dim + eps);
        rstd[r] = (float)rs;
        float c = (float)(rs * rs * rs * gx / dim);
        for (int j = 0; j < dim; j++) dxr[j] += (float)rs * dyr[j] * w[j] - c * xr[j];
    }
#pragma omp parallel for if (dim > 256)
    for (int j = 0; j < dim; j++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += (double)dy[(size_t)r * dim + j] * x[(size_t)r * dim + j] * rstd[r];
        dw[j] += (float)s;
    }
}

/* W gradient of y = in·Wᵀ (+b): gw += dyᵀ in, gb += Σ dy;  din (=|+=) dy W. */
static void linear_backward(const float *in, const float *w, const float *dy, int n, int in_dim, int out_dim,
                            float *gw, float *gb, float *din, float din_beta) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, n, 1.0f, dy, out_dim, in, in_dim, 1.0f, gw,
                in_dim);
    if (gb) {
#pragma omp parallel for if (out_dim > 256)
        for (int o = 0; o < out_dim; o++) {
            double s = 0;
            for (int r = 0; r < n; r++) s += dy[(size_t)r * out_dim + o];
            gb[o] += (float)s;
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_dim, out_dim, 1.0f, dy, out_dim, w, in_dim, din_beta,
                din, in_dim);
}

void tl_backward(const struct lm_layer *ly, const struct tl_grads *g, const struct text_config *t,
                 const struct tl_segs *s, const float *x, const struct tl_acts *a, float *dx, float *work,
                 float *scores, struct train_prof *prof) {
    int T = s->row0[s->n], C = t->hidden_size, M = t->intermediate_size;
    int Q = t->n_heads * t->head_dim, KV = t->n_kv_heads * t->head_dim;
    size_t n = (size_t)T;
    float *dh = work, *dq = dh + n * C, *dk = dq + n * Q, *dv = dk + n * KV, *datt = dv + n * KV;
    float *dgate = datt + n * Q, *dup = dgate + n * M, *rstd = dup + n * M;

    double t0 = tp_now();
    /* MLP block: out = x2 + act·Wdᵀ; dx currently holds d(out) = d(x2) via the residual */
    linear_backward(a->act, ly->down_w, dx, T, M, C, g->down_w, g->down_b, dgate, 0.0f);
    size_t ni = n * M;
#pragma omp parallel for if (ni > 65536)
    for (size_t i = 0; i < ni; i++) {
        float z = a->gate[i], sig = 1.0f / (1.0f + expf(-z)), d_act = dgate[i];
        dup[i] = d_act * z * sig;
        dgate[i] = d_act * a->up[i] * sig * (1.0f + z * (1.0f - sig));
    }
    linear_backward(a->h2, ly->gate_w, dgate, T, C, M, g->gate_w, g->gate_b, dh, 0.0f);
    linear_backward(a->h2, ly->up_w, dup, T, C, M, g->up_w, g->up_b, dh, 1.0f);
    t0 = tp_add(prof, TP_MLP_BWD, t0);
    tl_rmsnorm_backward(a->x2, ly->mlp_norm, dh, T, C, t->rms_norm_eps, dx, g->mlp_norm, rstd);
    t0 = tp_add(prof, TP_NORM_BWD, t0);

    /* attention block: x2 = x + att·Woᵀ; dx now holds d(x2) */
    linear_backward(a->att, ly->o_w, dx, T, Q, C, g->o_w, g->o_b, datt, 0.0f);
    memset(dk, 0, n * KV * sizeof(float));
    memset(dv, 0, n * KV * sizeof(float));
    t0 = tp_add(prof, TP_ATTN_PROJ_BWD, t0);
    attention_backward_train(t, s, a->q, a->k, a->v, datt, dq, dk, dv, scores);
    t0 = tp_add(prof, TP_ATTN_BWD, t0);
    op_rope_backward_inplace(dq, s->pos, T, t->n_heads, t->head_dim, t->rope_theta);
    op_rope_backward_inplace(dk, s->pos, T, t->n_kv_heads, t->head_dim, t->rope_theta);
    linear_backward(a->h1, ly->q_w, dq, T, C, Q, g->q_w, g->q_b, dh, 0.0f);
    linear_backward(a->h1, ly->k_w, dk, T, C, KV, g->k_w, g->k_b, dh, 1.0f);
    linear_backward(a->h1, ly->v_w, dv, T, C, KV, g->v_w, g->v_b, dh, 1.0f);
    t0 = tp_add(prof, TP_ATTN_PROJ_BWD, t0);
    tl_rmsnorm_backward(x, ly->attn_norm, dh, T, C, t->rms_norm_eps, dx, g->attn_norm, rstd);
    tp_add(prof, TP_NORM_BWD, t0);
}
