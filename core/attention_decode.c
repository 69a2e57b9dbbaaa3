#include "attention_decode.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

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
    float *dots;   /* [R] */
};

/* Σ a[d]·b[d] with 8 independent partial sums (vectorisable without
 * reassociation; the float loop with one sum is a serial dependency chain). */
static inline __attribute__((always_inline)) float dot8(const float *a, const float *b, int n) {
    float part[8] = {0};
    int d = 0;
    for (; d + 8 <= n; d += 8)
        for (int u = 0; u < 8; u++) part[u] += a[d + u] * b[d + u];
    float s = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
    for (; d < n; d++) s += a[d] * b[d];
    return s;
}

/* dots[r] = Σ_d q_cols[d·R + r] · k[d]: one key against all R rows, 8 rows
 * at a time in register accumulators (vectorised across rows). */
static inline __attribute__((always_inline)) void dot_rows(const float *q_cols, int R, const float *k, int hd, float *dots) {
    int r0 = 0;
    for (; r0 + 8 <= R; r0 += 8) {
        float acc[8] = {0};
        for (int d = 0; d < hd; d++) {
            const float *qd = q_cols + (size_t)d * R + r0;
            for (int u = 0; u < 8; u++) acc[u] += qd[u] * k[d];
        }
        for (int u = 0; u < 8; u++) dots[r0 + u] = acc[u];
    }
    for (; r0 < R; r0++) {
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s += q_cols[(size_t)d * R + r0] * k[d];
        dots[r0] = s;
    }
}

static inline __attribute__((always_inline)) void axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
    for (int d = 0; d < n; d++) y[d] += a * x[d];
}

/* One (group, head): scores against the shared prefix (each key read once
 * for all rows), then each row's own positions, softmax, and the same two
 * passes over the values.
 *
 * Built twice (target_clones): the loops above are inlined (always_inline)
 * into an AVX2 copy, picked at load time on CPUs that have it, with twice
 * the vector width of the baseline copy.  Same summation order in both. */
__attribute__((target_clones("avx2", "default"))) static void
attend_group_head(const struct dec_group *g, const struct dec_row *rows, const float *q, int q_stride,
                  const struct kv_cache *c, int layer, int h, int kvh, int hd, float scale, int max_len,
                  const struct dec_scratch *w, float *out) {
    int R = g->n, P = g->prefix_len, kv_dim = c->kv_dim;
    const struct dec_row *rw = rows + g->first;
    for (int r = 0; r < R; r++) {
        const float *qr = q + (size_t)rw[r].row * q_stride + (size_t)h * hd;
        for (int d = 0; d < hd; d++) {
            float v = qr[d] * scale;
            w->q_rows[(size_t)r * hd + d] = v;
            w->q_cols[(size_t)d * R + r] = v;
        }
    }
    const float *Kp = kv_cache_k(c, g->root, layer) + (size_t)kvh * hd;
    const float *Vp = kv_cache_v(c, g->root, layer) + (size_t)kvh * hd;

    /* scores: shared prefix (by key when several rows share it), then own positions */
    if (R >= 4) {
        for (int j = 0; j < P; j++) {
            dot_rows(w->q_cols, R, Kp + (size_t)j * kv_dim, hd, w->dots);
            for (int r = 0; r < R; r++) w->scores[(size_t)r * max_len + j] = w->dots[r];
        }
    } else {
        for (int r = 0; r < R; r++)
            for (int j = 0; j < P; j++)
                w->scores[(size_t)r * max_len + j] = dot8(w->q_rows + (size_t)r * hd, Kp + (size_t)j * kv_dim, hd);
    }
    for (int r = 0; r < R; r++) {
        const float *K = kv_cache_k(c, rw[r].slot, layer) + (size_t)kvh * hd;
        float *s = w->scores + (size_t)r * max_len;
        for (int j = P; j < rw[r].len; j++) s[j] = dot8(w->q_rows + (size_t)r * hd, K + (size_t)j * kv_dim, hd);
        op_softmax_row(s, rw[r].len);
    }

    /* values: the prefix's rows once for all R rows, then own positions */
    memset(w->acc, 0, (size_t)R * hd * sizeof(float));
    for (int j = 0; j < P; j++) {
        const float *vj = Vp + (size_t)j * kv_dim;
        for (int r = 0; r < R; r++) axpy(w->acc + (size_t)r * hd, w->scores[(size_t)r * max_len + j], vj, hd);
    }
    for (int r = 0; r < R; r++) {
        const float *V = kv_cache_v(c, rw[r].slot, layer) + (size_t)kvh * hd;
        const float *s = w->scores + (size_t)r * max_len;
        float *a = w->acc + (size_t)r * hd;
        for (int j = P; j < rw[r].len; j++) axpy(a, s[j], V + (size_t)j * kv_dim, hd);
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
                     int head_dim, float *out, struct dsr_err *err) {
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
    size_t per_thread = 3 * R * hd + R * (size_t)max_len + R;
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
                                .dots = base + 3 * R * hd,
                                .scores = base + 3 * R * hd + R};
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
