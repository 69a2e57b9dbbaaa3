#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "ops.h"

/* Segments at least this long go through sgemm. */
#define ATTN_GEMM_MIN_ROWS 8

/* scores[i, 0..L) → causal softmax in place; row i sees positions <= start + i. */
static void causal_softmax_rows(float *scores, int n, int L, int start) {
#pragma omp parallel for if (n > 16)
    for (int i = 0; i < n; i++) {
        float *row = scores + (size_t)i * L;
        int visible = start + i + 1;
        op_softmax_row(row, visible);
        for (int j = visible; j < L; j++) row[j] = 0.0f;
    }
}

static int attend_gemm(const float *q, const float *K, const float *V, int n, int start, int n_heads, int n_kv_heads,
                       int head_dim, int kv_dim, float *out, struct dsr_err *err) {
    int L = start + n;
    int q_stride = n_heads * head_dim;
    int group = n_heads / n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    float *scores = malloc((size_t)n * (size_t)L * sizeof(float));
    if (!scores) return dsr_errf(err, "attention: out of memory for %d×%d scores", n, L);
    for (int h = 0; h < n_heads; h++) {
        int kvh = h / group;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, L, head_dim, scale, q + h * head_dim, q_stride,
                    K + kvh * head_dim, kv_dim, 0.0f, scores, L);
        causal_softmax_rows(scores, n, L, start);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, head_dim, L, 1.0f, scores, L, V + kvh * head_dim,
                    kv_dim, 0.0f, out + h * head_dim, q_stride);
    }
    free(scores);
    return 0;
}

/* One query row of one head against L cached positions; buf holds L floats. */
static void attend_row(const float *qh, const float *K, const float *V, int L, int head_dim, int kv_dim, float scale,
                       float *buf, float *outh) {
    for (int j = 0; j < L; j++) {
        const float *kj = K + (size_t)j * kv_dim;
        float s = 0;
        for (int d = 0; d < head_dim; d++) s += qh[d] * kj[d];
        buf[j] = s * scale;
    }
    op_softmax_row(buf, L);
    for (int d = 0; d < head_dim; d++) outh[d] = 0;
    for (int j = 0; j < L; j++) {
        const float *vj = V + (size_t)j * kv_dim;
        for (int d = 0; d < head_dim; d++) outh[d] += buf[j] * vj[d];
    }
}

int attention_forward(const float *q, const struct kv_cache *cache, int layer, const struct lm_segment *segs,
                      int n_segs, int n_heads, int n_kv_heads, int head_dim, float *out, struct dsr_err *err) {
    int q_stride = n_heads * head_dim;
    int kv_dim = cache->kv_dim;
    int group = n_heads / n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);

    /* row offset of each segment, and the longest context among short segments */
    int *row0 = malloc(((size_t)n_segs + 1) * sizeof *row0);
    if (!row0) return dsr_errf(err, "attention: out of memory");
    int rows = 0, max_short_len = 0;
    for (int s = 0; s < n_segs; s++) {
        row0[s] = rows;
        rows += segs[s].n;
        int L = cache->len[segs[s].slot] + segs[s].n;
        if (segs[s].n < ATTN_GEMM_MIN_ROWS && L > max_short_len) max_short_len = L;
    }

    int rc = 0;
    for (int s = 0; s < n_segs && rc == 0; s++) {
        if (segs[s].n < ATTN_GEMM_MIN_ROWS) continue;
        const float *K = kv_cache_k(cache, segs[s].slot, layer);
        const float *V = kv_cache_v(cache, segs[s].slot, layer);
        rc = attend_gemm(q + (size_t)row0[s] * q_stride, K, V, segs[s].n, cache->len[segs[s].slot], n_heads,
                         n_kv_heads, head_dim, kv_dim, out + (size_t)row0[s] * q_stride, err);
    }

    if (rc == 0 && max_short_len > 0) {
        int n_threads = omp_get_max_threads();
        float *bufs = malloc((size_t)n_threads * (size_t)max_short_len * sizeof(float));
        if (!bufs) {
            free(row0);
            return dsr_errf(err, "attention: out of memory");
        }
        /* work items: (short segment, head) pairs */
        int n_items = n_segs * n_heads;
#pragma omp parallel for schedule(dynamic, 1)
        for (int item = 0; item < n_items; item++) {
            int s = item / n_heads, h = item % n_heads;
            if (segs[s].n >= ATTN_GEMM_MIN_ROWS) continue;
            float *buf = bufs + (size_t)omp_get_thread_num() * max_short_len;
            const float *K = kv_cache_k(cache, segs[s].slot, layer) + (h / group) * head_dim;
            const float *V = kv_cache_v(cache, segs[s].slot, layer) + (h / group) * head_dim;
            int start = cache->len[segs[s].slot];
            for (int i = 0; i < segs[s].n; i++) {
                size_t row = (size_t)row0[s] + (size_t)i;
                attend_row(q + row * q_stride + h * head_dim, K, V, start + i + 1, head_dim, kv_dim, scale, buf,
                           out + row * q_stride + h * head_dim);
            }
        }
        free(bufs);
    }
    free(row0);
    return rc;
}
