/* Row-blocked causal attention for training (see train_attention.h).
 *
 * For row block [i0, i1) of b rows and one head, with P and dS b×i1 blocks
 * (leading dimension i1) in the scratch:
 *   forward   P = softmax(scale · Q[i0:i1] K[0:i1]ᵀ)   out[i0:i1] = P V[0:i1]
 *   backward  dV[0:i1] += Pᵀ dO[i0:i1]   dP = dO[i0:i1] V[0:i1]ᵀ
 *             dS = P ⊙ (dP − rowsum(P ⊙ dP))
 *             dQ[i0:i1] = scale · dS K[0:i1]   dK[0:i1] += scale · dSᵀ Q[i0:i1]
 * Within a block, row i sees columns [0, i]; the columns (i, i1) of the
 * diagonal tile are set to zero so the block GEMMs add nothing for them. */
#include "nn/attention_train.h"

#include <cblas.h>
#include <math.h>

#include "nn/ops.h"

size_t ta_scratch_floats(int max_seq_len, int block_rows) {
    size_t n = (size_t)max_seq_len, b = (size_t)(block_rows < max_seq_len ? block_rows : max_seq_len);
    return 2 * b * n;
}

/* Shared per-(head, block) geometry: offsets of head h's columns. */
struct head_view {
    size_t qo, ko;      /* column offset of the query head / its KV head */
    int q_stride, kv_stride, hd;
    float scale;
};

static struct head_view head_view(const struct ta_dims *d, int h) {
    int group = d->n_heads / d->n_kv_heads;
    struct head_view hv = {.qo = (size_t)h * d->head_dim,
                           .ko = (size_t)(h / group) * d->head_dim,
                           .q_stride = d->n_heads * d->head_dim,
                           .kv_stride = d->n_kv_heads * d->head_dim,
                           .hd = d->head_dim,
                           .scale = 1.0f / sqrtf((float)d->head_dim)};
    return hv;
}

/* row[0, visible) = softmax(row[0, visible)), row[visible, width) = 0. */
static void causal_softmax_row(float *row, int visible, int width) {
    op_softmax_row(row, visible);
    for (int j = visible; j < width; j++) row[j] = 0.0f;
}

/* P[b, i1] = causal softmax(scale · q[i0:i1] k[0:i1]ᵀ) for rows [i0, i1). */
static void block_probs(const struct head_view *hv, const float *q, const float *k, int i0, int i1, float *P) {
    int b = i1 - i0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, i1, hv->hd, hv->scale, q + (size_t)i0 * hv->q_stride + hv->qo,
                hv->q_stride, k + hv->ko, hv->kv_stride, 0.0f, P, i1);
    /* serial: an OpenMP region between two BLAS calls costs a thread
     * hand-over each time, and splitting the rows measured no faster */
    for (int r = 0; r < b; r++) {
        causal_softmax_row(P + (size_t)r * i1, i0 + r + 1, i1);
    }
}

void ta_forward(const struct ta_dims *d, int n, const float *q, const float *k, const float *v, float *out,
                float *scratch) {
    for (int h = 0; h < d->n_heads; h++) {
        struct head_view hv = head_view(d, h);
        for (int i0 = 0; i0 < n; i0 += d->block_rows) {
            int i1 = n - i0 > d->block_rows ? i0 + d->block_rows : n, b = i1 - i0;
            float *P = scratch;
            block_probs(&hv, q, k, i0, i1, P);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, hv.hd, i1, 1.0f, P, i1, v + hv.ko,
                        hv.kv_stride, 0.0f, out + (size_t)i0 * hv.q_stride + hv.qo, hv.q_stride);
        }
    }
}

void ta_backward(const struct ta_dims *d, int n, const float *q, const float *k, const float *v, const float *d_out,
                 float *dq, float *dk, float *dv, float *scratch) {
    for (int h = 0; h < d->n_heads; h++) {
        struct head_view hv = head_view(d, h);
        for (int i0 = 0; i0 < n; i0 += d->block_rows) {
            int i1 = n - i0 > d->block_rows ? i0 + d->block_rows : n, b = i1 - i0;
            float *P = scratch, *dS = scratch + (size_t)b * i1;
            size_t row_q = (size_t)i0 * hv.q_stride + hv.qo;
            block_probs(&hv, q, k, i0, i1, P);
            /* dV[0:i1] += Pᵀ dO[i0:i1];  dP = dO[i0:i1] V[0:i1]ᵀ (into dS) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, hv.hd, b, 1.0f, P, i1, d_out + row_q,
                        hv.q_stride, 1.0f, dv + hv.ko, hv.kv_stride);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, i1, hv.hd, 1.0f, d_out + row_q, hv.q_stride,
                        v + hv.ko, hv.kv_stride, 0.0f, dS, i1);
            /* softmax backward row by row over the visible part (serial, as in block_probs) */
            for (int r = 0; r < b; r++) {
                const float *p = P + (size_t)r * i1;
                float *g = dS + (size_t)r * i1;
                int visible = i0 + r + 1;
                double dot = 0;
                for (int j = 0; j < visible; j++) dot += (double)p[j] * g[j];
                for (int j = 0; j < visible; j++) g[j] = p[j] * (g[j] - (float)dot);
                for (int j = visible; j < i1; j++) g[j] = 0.0f;
            }
            /* dQ[i0:i1] = scale · dS K[0:i1];  dK[0:i1] += scale · dSᵀ Q[i0:i1] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, hv.hd, i1, hv.scale, dS, i1, k + hv.ko,
                        hv.kv_stride, 0.0f, dq + row_q, hv.q_stride);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, hv.hd, b, hv.scale, dS, i1, q + row_q,
                        hv.q_stride, 1.0f, dk + hv.ko, hv.kv_stride);
        }
    }
}
