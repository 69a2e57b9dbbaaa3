#include "nn/attention_decode.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

/* One new row: where it sits in q/out, its slot, and how many positions it
 * sees (its own included). */
struct dec_row {
    int row, slot, len;
};

/* Rows that read the first prefix_len positions of slot root; after
 * grouping they are rows[first .. first + n). */
struct dec_group {
    int root, prefix_len, first, n;
};

/* Per-thread buffers, carved from one allocation. */
struct dec_scratch {
    float *q_rows; /* [R, hd] scaled queries, row-major */
    float *q_cols; /* [hd, R] the same, transposed: the prefix loop vectorises over rows */
    float *scores; /* [R, max_len] */
    float *acc;    /* [R, hd] weighted values */
    float *kv;     /* [max_len, hd] a BF16 cache's keys or values, widened */
    int avx2, avx512; /* the vector paths this call may take (same results) */
};

/* The 8 lane sums of one dot product, in a fixed order. */
static inline __attribute__((always_inline)) float lanes_sum(const float *part) {
    return ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
}

/* s[j] = q · K[j] for keys j0 ≤ j < j1 (K: one head, [len, hd]).  Each
 * dot product accumulates in 8 lanes (lane u: d ≡ u mod 8, increasing d),
 * then lanes_sum, then the hd mod 8 tail: vectorisable without reassociation.
 * Four keys run together so the four accumulator chains overlap. */
static inline __attribute__((always_inline)) void keys_dot(const float *q, const float *K, int j0, int j1, int hd,
                                                           float *s) {
    size_t kv_stride = (size_t)hd; /* one head's positions are contiguous (kv_cache.h) */
    int hd8 = hd & ~7, j = j0;
    for (; j + 4 <= j1; j += 4) {
        const float *k0 = K + (size_t)j * kv_stride, *k1 = k0 + kv_stride, *k2 = k1 + kv_stride, *k3 = k2 + kv_stride;
        float p0[8] = {0}, p1[8] = {0}, p2[8] = {0}, p3[8] = {0};
        for (int d = 0; d < hd8; d += 8)
            for (int u = 0; u < 8; u++) {
                float qd = q[d + u];
                p0[u] += qd * k0[d + u];
                p1[u] += qd * k1[d + u];
                p2[u] += qd * k2[d + u];
                p3[u] += qd * k3[d + u];
            }
        float t0 = lanes_sum(p0), t1 = lanes_sum(p1), t2 = lanes_sum(p2), t3 = lanes_sum(p3);
        for (int d = hd8; d < hd; d++) {
            t0 += q[d] * k0[d];
            t1 += q[d] * k1[d];
            t2 += q[d] * k2[d];
            t3 += q[d] * k3[d];
        }
        s[j] = t0, s[j + 1] = t1, s[j + 2] = t2, s[j + 3] = t3;
    }
    for (; j < j1; j++) {
        const float *k = K + (size_t)j * kv_stride;
        float p[8] = {0};
        for (int d = 0; d < hd8; d += 8)
            for (int u = 0; u < 8; u++) p[u] += q[d + u] * k[d + u];
        float t = lanes_sum(p);
        for (int d = hd8; d < hd; d++) t += q[d] * k[d];
        s[j] = t;
    }
}

/* Scores of 8 rows (columns r0..r0+7 of q_cols, [hd, R]) against keys
 * j0 ≤ j < P, written to scores[(r0 + u)·ld + j]: each key is loaded once for
 * the 8 rows (vectorised across rows, Σ over d in increasing order), four
 * keys at a time for independent accumulator chains. */
static inline __attribute__((always_inline)) void rows8_dot(const float *q_cols, int R, int r0, const float *K, int j0,
                                                            int P, int hd, float *scores, size_t ld) {
    size_t kv_stride = (size_t)hd;
    int j = j0;
    for (; j + 4 <= P; j += 4) {
        const float *k0 = K + (size_t)j * kv_stride, *k1 = k0 + kv_stride, *k2 = k1 + kv_stride, *k3 = k2 + kv_stride;
        float a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};
        for (int d = 0; d < hd; d++) {
            const float *qd = q_cols + (size_t)d * R + r0;
            for (int u = 0; u < 8; u++) {
                a0[u] += qd[u] * k0[d];
                a1[u] += qd[u] * k1[d];
                a2[u] += qd[u] * k2[d];
                a3[u] += qd[u] * k3[d];
            }
        }
        for (int u = 0; u < 8; u++) {
            float *row = scores + (size_t)(r0 + u) * ld + j;
            row[0] = a0[u], row[1] = a1[u], row[2] = a2[u], row[3] = a3[u];
        }
    }
    for (; j < P; j++) {
        const float *k = K + (size_t)j * kv_stride;
        float a[8] = {0};
        for (int d = 0; d < hd; d++) {
            const float *qd = q_cols + (size_t)d * R + r0;
            for (int u = 0; u < 8; u++) a[u] += qd[u] * k[d];
        }
        for (int u = 0; u < 8; u++) scores[(size_t)(r0 + u) * ld + j] = a[u];
    }
}

/* acc[r·hd + d] += Σ_j p[r·ld + j] · V[j][d] for rows r < R and values
 * j0 ≤ j < j1 (V: one head, [len, hd]): each value row is loaded once for all
 * R rows, four at a time so each accumulator is loaded and stored once per
 * four products. */
static inline __attribute__((always_inline)) void rows_pv(float *acc, int R, const float *p, size_t ld, const float *V,
                                                          int j0, int j1, int hd) {
    size_t kv_stride = (size_t)hd;
    int j = j0;
    for (; j + 4 <= j1; j += 4) {
        const float *v0 = V + (size_t)j * kv_stride, *v1 = v0 + kv_stride, *v2 = v1 + kv_stride, *v3 = v2 + kv_stride;
        for (int r = 0; r < R; r++) {
            const float *pr = p + (size_t)r * ld + j;
            float p0 = pr[0], p1 = pr[1], p2 = pr[2], p3 = pr[3];
            float *a = acc + (size_t)r * hd;
#pragma omp simd
            for (int d = 0; d < hd; d++) a[d] += ((p0 * v0[d] + p1 * v1[d]) + p2 * v2[d]) + p3 * v3[d];
        }
    }
    for (; j < j1; j++) {
        const float *v = V + (size_t)j * kv_stride;
        for (int r = 0; r < R; r++) {
            float pj = p[(size_t)r * ld + j];
            float *a = acc + (size_t)r * hd;
#pragma omp simd
            for (int d = 0; d < hd; d++) a[d] += pj * v[d];
        }
    }
}

/* Vector paths for blocks of 8 rows (x86-64), picked at run time
 * (attention_decode's isa).  Each computes every output with exactly the
 * portable loops' operations in the same order (a multiply, then an add,
 * each rounded: the build is ISO C, so nothing is contracted into an FMA),
 * so results are bit-identical to the portable path on every CPU; they only
 * keep more work in flight: for the scores 16 keys transposed into the lanes
 * of 8 accumulators (AVX-512) or 8 keys in 8 accumulators instead of 4
 * (AVX2), and for the values the 8 rows' sums held in registers across the
 * whole prefix instead of loaded and stored every 4 values.
 * Both prefetch the stream a few rows ahead: the prefix is read from memory
 * once per step (12 layers × 16 heads of 2 · P · hd floats do not stay in
 * cache), and without it the loads wait on DRAM between heads. */
#if defined(__x86_64__)
#include <immintrin.h>

enum { PREFETCH_ROWS = 32 }; /* keys or values ahead: 8 KiB at head_dim 64 */

/* rows8_dot for keys 0 ≤ j < P rounded down to a multiple of 8; returns
 * that count (the caller finishes the rest with rows8_dot). */
__attribute__((target("avx2"))) static int rows8_dot_avx2(const float *q_cols, int R, int r0, const float *K, int P,
                                                          int hd, float *scores, size_t ld) {
    size_t kv_stride = (size_t)hd;
    int j = 0;
    for (; j + 8 <= P; j += 8) {
        const float *k = K + (size_t)j * kv_stride;
        for (int line = 0; line < 8 * hd; line += 16)
            _mm_prefetch((const char *)(k + PREFETCH_ROWS * kv_stride + line), _MM_HINT_T0);
        __m256 a[8];
        for (int u = 0; u < 8; u++) a[u] = _mm256_setzero_ps();
        for (int d = 0; d < hd; d++) {
            __m256 q = _mm256_loadu_ps(q_cols + (size_t)d * R + r0);
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++)
                a[u] = _mm256_add_ps(a[u], _mm256_mul_ps(q, _mm256_broadcast_ss(k + (size_t)u * kv_stride + d)));
        }
        float t[8][8]; /* [key u][row] */
        for (int u = 0; u < 8; u++) _mm256_storeu_ps(t[u], a[u]);
        for (int r = 0; r < 8; r++) {
            float *row = scores + (size_t)(r0 + r) * ld + j;
            for (int u = 0; u < 8; u++) row[u] = t[u][r];
        }
    }
    return j;
}

/* The 16 × 16 block rows[i] (i: key, lane: column) transposed in registers:
 * cols[c] lane i = rows[i] lane c.  Unpacks within 128-bit lanes, then
 * 128-bit lane shuffles (u[4i + m] lane L holds column 4L + m of rows
 * 4i .. 4i + 3). */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(const __m512 rows[16],
                                                                                __m512 cols[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512d a = _mm512_castps_pd(t[4 * i + h]), b = _mm512_castps_pd(t[4 * i + h + 2]);
            u[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        __m512 x_lo = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x44);
        __m512 y_lo = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x44);
        __m512 x_hi = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xEE);
        __m512 y_hi = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xEE);
        cols[m] = _mm512_shuffle_f32x4(x_lo, y_lo, 0x88);
        cols[4 + m] = _mm512_shuffle_f32x4(x_lo, y_lo, 0xDD);
        cols[8 + m] = _mm512_shuffle_f32x4(x_hi, y_hi, 0x88);
        cols[12 + m] = _mm512_shuffle_f32x4(x_hi, y_hi, 0xDD);
    }
}

/* rows8_dot for keys 0 ≤ j < P rounded down to a multiple of 16, hd a
 * multiple of 16 (q_rows: the rows' scaled queries, [R, hd]); returns that
 * count.  16 keys by 16 columns are transposed in registers so each
 * row's 16 scores sit in one accumulator (keys across lanes): 8 rows × 16
 * keys per pass over d, written out contiguously. */
__attribute__((target("avx512f"))) static int rows8_dot_avx512(const float *q_rows, int r0, const float *K, int P,
                                                              int hd, float *scores, size_t ld) {
    size_t kv_stride = (size_t)hd;
    const float *q = q_rows + (size_t)r0 * hd;
    int j = 0;
    for (; j + 16 <= P; j += 16) {
        const float *k = K + (size_t)j * kv_stride;
        __m512 a[8];
        for (int r = 0; r < 8; r++) a[r] = _mm512_setzero_ps();
        for (int d0 = 0; d0 < hd; d0 += 16) {
            __m512 rows[16], cols[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                rows[i] = _mm512_loadu_ps(k + (size_t)i * kv_stride + d0);
                _mm_prefetch((const char *)(k + (size_t)(PREFETCH_ROWS + i) * kv_stride + d0), _MM_HINT_T0);
            }
            transpose16(rows, cols);
#pragma GCC unroll 16
            for (int dd = 0; dd < 16; dd++)
#pragma GCC unroll 8
                for (int r = 0; r < 8; r++)
                    a[r] = _mm512_add_ps(a[r], _mm512_mul_ps(_mm512_set1_ps(q[(size_t)r * hd + d0 + dd]), cols[dd]));
        }
        for (int r = 0; r < 8; r++) _mm512_storeu_ps(scores + (size_t)(r0 + r) * ld + j, a[r]);
    }
    return j;
}

/* rows_pv for 8 rows (acc [8, hd], p rows ld apart) with hd a multiple of
 * 32: 32 columns at a time, the 8 rows' sums in 16 registers. */
__attribute__((target("avx512f"))) static void rows8_pv_avx512(float *acc, const float *p, size_t ld, const float *V,
                                                              int j0, int j1, int hd) {
    size_t kv_stride = (size_t)hd;
    for (int d0 = 0; d0 < hd; d0 += 32) {
        __m512 a[8][2];
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 2; c++) a[r][c] = _mm512_loadu_ps(acc + (size_t)r * hd + d0 + 16 * c);
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            const float *v = V + (size_t)j * kv_stride + d0;
            _mm_prefetch((const char *)(v + PREFETCH_ROWS * kv_stride), _MM_HINT_T0);
            _mm_prefetch((const char *)(v + (PREFETCH_ROWS + 2) * kv_stride), _MM_HINT_T0);
            __m512 v0[2], v1[2], v2[2], v3[2];
            for (int c = 0; c < 2; c++) {
                v0[c] = _mm512_loadu_ps(v + 16 * c);
                v1[c] = _mm512_loadu_ps(v + kv_stride + 16 * c);
                v2[c] = _mm512_loadu_ps(v + 2 * kv_stride + 16 * c);
                v3[c] = _mm512_loadu_ps(v + 3 * kv_stride + 16 * c);
            }
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++) {
                const float *pr = p + (size_t)r * ld + j;
                __m512 p0 = _mm512_set1_ps(pr[0]), p1 = _mm512_set1_ps(pr[1]), p2 = _mm512_set1_ps(pr[2]),
                       p3 = _mm512_set1_ps(pr[3]);
                for (int c = 0; c < 2; c++) {
                    __m512 t = _mm512_add_ps(_mm512_mul_ps(p0, v0[c]), _mm512_mul_ps(p1, v1[c]));
                    t = _mm512_add_ps(t, _mm512_mul_ps(p2, v2[c]));
                    t = _mm512_add_ps(t, _mm512_mul_ps(p3, v3[c]));
                    a[r][c] = _mm512_add_ps(a[r][c], t);
                }
            }
        }
        for (; j < j1; j++) {
            const float *v = V + (size_t)j * kv_stride + d0;
            __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
            for (int r = 0; r < 8; r++) {
                __m512 pj = _mm512_set1_ps(p[(size_t)r * ld + j]);
                a[r][0] = _mm512_add_ps(a[r][0], _mm512_mul_ps(pj, v0));
                a[r][1] = _mm512_add_ps(a[r][1], _mm512_mul_ps(pj, v1));
            }
        }
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 2; c++) _mm512_storeu_ps(acc + (size_t)r * hd + d0 + 16 * c, a[r][c]);
    }
}
#endif

/* One (group, head): scores against the shared prefix (each key read once
 * for all rows), then each row's own positions, softmax, and the same two
 * passes over the values.
 *
 * Built twice (target_clones): the loops above are inlined (always_inline)
 * into an AVX2 copy, picked at load time on CPUs that have it, with twice
 * the vector width of the baseline copy.  Same summation order in both.  A
 * row's prefix scores are summed over d in order inside a block of 8 rows
 * and in 8 lanes outside one, so the group's size changes rounding only. */
__attribute__((target_clones("avx2", "default"))) static void
attend_group_head(const struct dec_group *g, const struct dec_row *rows, const float *q, int q_stride,
                  const struct kv_cache *c, int layer, int h, int kvh, int hd, float scale, int max_len,
                  const struct dec_scratch *w, float *out) {
    int R = g->n, P = g->prefix_len;
    const struct dec_row *rw = rows + g->first;
    for (int r = 0; r < R; r++) {
        const float *qr = q + (size_t)rw[r].row * q_stride + (size_t)h * hd;
        for (int d = 0; d < hd; d++) {
            float v = qr[d] * scale;
            w->q_rows[(size_t)r * hd + d] = v;
            w->q_cols[(size_t)d * R + r] = v;
        }
    }
    /* scores: the shared prefix by blocks of 8 rows (each key read once per
     * block), the rows left over one by one; then each row's own positions.
     * Each kv_cache_rows call may reuse w->kv: the rows it returned before
     * are no longer read. */
    const float *Kp = kv_cache_rows(c, KV_KEYS, g->root, layer, kvh, 0, P, w->kv);
    int r8 = R & ~7;
    for (int r0 = 0; r0 < r8; r0 += 8) {
        int j = 0;
#if defined(__x86_64__)
        if (w->avx512 && hd % 16 == 0)
            j = rows8_dot_avx512(w->q_rows, r0, Kp, P, hd, w->scores, max_len);
        else if (w->avx2)
            j = rows8_dot_avx2(w->q_cols, R, r0, Kp, P, hd, w->scores, max_len);
#endif
        rows8_dot(w->q_cols, R, r0, Kp, j, P, hd, w->scores, max_len);
    }
    for (int r = r8; r < R; r++)
        keys_dot(w->q_rows + (size_t)r * hd, Kp, 0, P, hd, w->scores + (size_t)r * max_len);
    for (int r = 0; r < R; r++) {
        int own = rw[r].len - P; /* positions P .. len-1, from the row's slot */
        const float *K = kv_cache_rows(c, KV_KEYS, rw[r].slot, layer, kvh, P, rw[r].len, w->kv);
        float *s = w->scores + (size_t)r * max_len;
        keys_dot(w->q_rows + (size_t)r * hd, K, 0, own, hd, s + P);
        op_softmax_row(s, rw[r].len);
    }

    /* values: the prefix's rows once for all R rows, then own positions */
    memset(w->acc, 0, (size_t)R * hd * sizeof(float));
    const float *Vp = kv_cache_rows(c, KV_VALUES, g->root, layer, kvh, 0, P, w->kv);
    int pv_rows = 0; /* rows whose prefix values are done */
#if defined(__x86_64__)
    if (w->avx512 && hd % 32 == 0)
        for (; pv_rows + 8 <= R; pv_rows += 8)
            rows8_pv_avx512(w->acc + (size_t)pv_rows * hd, w->scores + (size_t)pv_rows * max_len, max_len, Vp, 0, P,
                            hd);
#endif
    rows_pv(w->acc + (size_t)pv_rows * hd, R - pv_rows, w->scores + (size_t)pv_rows * max_len, max_len, Vp, 0, P, hd);
    for (int r = 0; r < R; r++) {
        int own = rw[r].len - P;
        const float *V = kv_cache_rows(c, KV_VALUES, rw[r].slot, layer, kvh, P, rw[r].len, w->kv);
        float *a = w->acc + (size_t)r * hd;
        rows_pv(a, 1, w->scores + (size_t)r * max_len + P, max_len, V, 0, own, hd);
        memcpy(out + (size_t)rw[r].row * q_stride + (size_t)h * hd, a, (size_t)hd * sizeof(float));
    }
}

/* Collects the short segments' rows, grouped by (prefix slot, prefix length);
 * rows and groups are sized for every row.  Returns the number of groups. */
static int group_rows(const struct kv_cache *c, const struct lm_segment *segs, const int *row0,
                      const unsigned char *is_short, int n_segs, struct dec_row *rows, struct dec_group *groups,
                      int *group_of, struct dec_row *unsorted) {
    int n_rows = 0, n_groups = 0;
    for (int s = 0; s < n_segs; s++) {
        if (!is_short[s]) continue;
        int slot = segs[s].slot, root = c->prefix_slot[slot], P = c->prefix_len[slot];
        int gi = 0;
        while (gi < n_groups && (groups[gi].root != root || groups[gi].prefix_len != P)) gi++;
        if (gi == n_groups) groups[n_groups++] = (struct dec_group){.root = root, .prefix_len = P};
        for (int i = 0; i < segs[s].n; i++) {
            unsorted[n_rows] = (struct dec_row){.row = row0[s] + i, .slot = slot, .len = c->len[slot] + i + 1};
            group_of[n_rows++] = gi;
            groups[gi].n++;
        }
    }
    for (int gi = 0, first = 0; gi < n_groups; gi++) {
        groups[gi].first = first;
        first += groups[gi].n;
        groups[gi].n = 0;
    }
    for (int i = 0; i < n_rows; i++) {
        struct dec_group *g = &groups[group_of[i]];
        rows[g->first + g->n++] = unsorted[i];
    }
    return n_groups;
}

int attention_decode(const float *q, const struct kv_cache *cache, int layer, const struct lm_segment *segs,
                     const int *row0, const unsigned char *is_short, int n_segs, int n_heads, int n_kv_heads,
                     int head_dim, enum decode_isa isa, float *out, struct dsr_err *err) {
    int avx2 = 0, avx512 = 0;
#if defined(__x86_64__)
    if (isa == DECODE_ISA_AUTO) {
        avx2 = __builtin_cpu_supports("avx2");
        avx512 = __builtin_cpu_supports("avx512f");
    }
#else
    (void)isa;
#endif
    int n_rows = 0;
    for (int s = 0; s < n_segs; s++)
        if (is_short[s]) n_rows += segs[s].n;
    if (n_rows == 0) return 0;
    struct dec_row *rows = malloc((size_t)n_rows * 2 * sizeof *rows);
    struct dec_group *groups = malloc((size_t)n_rows * sizeof *groups);
    int *group_of = malloc((size_t)n_rows * sizeof *group_of);
    if (!rows || !groups || !group_of) {
        free(rows);
        free(groups);
        free(group_of);
        return dsr_errf(err, "attention: out of memory for %d decode rows", n_rows);
    }
    int n_groups = group_rows(cache, segs, row0, is_short, n_segs, rows, groups, group_of, rows + n_rows);
    int max_rows = 0, max_len = 0;
    for (int gi = 0; gi < n_groups; gi++)
        if (groups[gi].n > max_rows) max_rows = groups[gi].n;
    for (int i = 0; i < n_rows; i++)
        if (rows[i].len > max_len) max_len = rows[i].len;

    size_t R = (size_t)max_rows, hd = (size_t)head_dim;
    size_t kv_floats = cache->dtype == KV_BF16 ? (size_t)max_len * hd : 0;
    size_t per_thread = 3 * R * hd + R * (size_t)max_len + kv_floats;
    int n_threads = omp_get_max_threads();
    float *block = malloc((size_t)n_threads * per_thread * sizeof(float));
    if (!block) {
        free(rows);
        free(groups);
        free(group_of);
        return dsr_errf(err, "attention: out of memory for %d × %d decode scores", max_rows, max_len);
    }
    int q_stride = n_heads * head_dim, group = n_heads / n_kv_heads;
    float scale = 1.0f / sqrtf((float)head_dim);
    int n_items = n_groups * n_heads;
#pragma omp parallel for schedule(dynamic, 1)
    for (int item = 0; item < n_items; item++) {
        float *base = block + (size_t)omp_get_thread_num() * per_thread;
        struct dec_scratch w = {.q_rows = base,
                                .q_cols = base + R * hd,
                                .acc = base + 2 * R * hd,
                                .scores = base + 3 * R * hd,
                                .kv = base + 3 * R * hd + R * (size_t)max_len,
                                .avx2 = avx2,
                                .avx512 = avx512};
        int gi = item / n_heads, h = item % n_heads;
        attend_group_head(&groups[gi], rows, q, q_stride, cache, layer, h, h / group, head_dim, scale, max_len, &w,
                          out);
    }
    free(block);
    free(rows);
    free(groups);
    free(group_of);
    return 0;
}
