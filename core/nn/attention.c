#include "nn/attention.h"

#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "nn/attention_decode.h"
#include "nn/ops.h"

/* Segments at least this long go through sgemm (two calls per head, each
 * waking OpenBLAS's threads); shorter ones through attention_decode's one
 * parallel pass over all rows.  Measured on dsr-shapes' /score (16 segments
 * of ~90 rows, 4 layers × 4 heads): attention 23.4 ms per request with the
 * threshold at 8, 9.8 ms at 128. */
#define ATTN_GEMM_MIN_ROWS 128

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

static int attend_gemm(const float *q, const struct kv_cache *cache, int slot, int layer, int n, int n_heads,
                       int n_kv_heads, int head_dim, float *out, struct dsr_err *err) {
    int start = cache->len[slot];
    int L = start + n;
    int q_stride = n_heads * head_dim;
    int group = n_heads / n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    /* a BF16 cache's keys and values are widened into kv (2 · L · head_dim) */
    size_t kv_floats = cache->dtype == KV_BF16 ? 2 * (size_t)L * head_dim : 0;
    float *scores = malloc(((size_t)n * (size_t)L + kv_floats) * sizeof(float));
    if (!scores) return dsr_errf(err, "attention: out of memory for %d×%d scores", n, L);
    float *kv = scores + (size_t)n * L;
    for (int h = 0; h < n_heads; h++) {
        int kvh = h / group;
        const float *K = kv_cache_rows(cache, KV_KEYS, slot, layer, kvh, 0, L, kv);
        const float *V = kv_cache_rows(cache, KV_VALUES, slot, layer, kvh, 0, L, kv + (size_t)L * head_dim);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, L, head_dim, scale, q + h * head_dim, q_stride, K,
                    head_dim, 0.0f, scores, L);
        causal_softmax_rows(scores, n, L, start);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, head_dim, L, 1.0f, scores, L, V, head_dim, 0.0f,
                    out + h * head_dim, q_stride);
    }
    free(scores);
    return 0;
}

int attention_forward(const float *q, const struct kv_cache *cache, int layer, const struct lm_segment *segs,
                      int n_segs, int n_heads, int n_kv_heads, int head_dim, float *out, struct dsr_err *err) {
    int q_stride = n_heads * head_dim;

    /* Long segments with contiguous keys go through sgemm; the rest (decode
     * steps, and any segment reading a shared prefix) through attention_decode. */
    int *row0 = malloc(((size_t)n_segs + 1) * sizeof *row0);
    unsigned char *is_short = malloc((size_t)n_segs + 1);
    if (!row0 || !is_short) {
        free(row0);
        free(is_short);
        return dsr_errf(err, "attention: out of memory");
    }
    int rows = 0;
    for (int s = 0; s < n_segs; s++) {
        int slot = segs[s].slot;
        row0[s] = rows;
        rows += segs[s].n;
        bool shared = cache->prefix_len[slot] > 0 && cache->prefix_slot[slot] != slot;
        is_short[s] = segs[s].n < ATTN_GEMM_MIN_ROWS || shared;
    }

    int rc = 0;
    for (int s = 0; s < n_segs && rc == 0; s++) {
        if (is_short[s]) continue;
        rc = attend_gemm(q + (size_t)row0[s] * q_stride, cache, segs[s].slot, layer, segs[s].n, n_heads, n_kv_heads,
                         head_dim, out + (size_t)row0[s] * q_stride, err);
    }
    if (rc == 0)
        rc = attention_decode(q, cache, layer, segs, row0, is_short, n_segs, n_heads, n_kv_heads, head_dim,
                              DECODE_ISA_AUTO, out, err);
    free(row0);
    free(is_short);
    return rc;
}
