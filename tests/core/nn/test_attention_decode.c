/* Decode attention (nn/attention_decode.h): the x86 vector paths against the
 * portable loops, and both against a direct double-precision computation.
 *
 *   paths      for head_dim 64 and 128 (the AVX-512 transposed scores and
 *              register-blocked values) and 20 (AVX2 scores only), groups of
 *              8, 12, 16 and 3 rows reading one shared prefix of 151
 *              positions (not a multiple of 16: the kernels' key tails run)
 *              plus 0..9 positions of their own, float32 and BF16 caches:
 *              DECODE_ISA_AUTO gives the same bits as DECODE_ISA_PORTABLE
 *              (the vector paths keep the portable order of operations);
 *   reference  every output within 1e-5 (relative to the output's largest
 *              magnitude) of softmax(q·Kᵀ/√d)·V summed in double, with grouped
 *              query heads (4 query heads over 2 KV heads). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/rng.h"
#include "nn/attention_decode.h"
#include "nn/kv_cache.h"

#define N_LAYERS 2
#define N_HEADS 4
#define N_KV_HEADS 2
#define PREFIX 151
#define MAX_ROWS 16
#define MAX_OWN 9

static void fill(struct dsr_rng *r, float *p, size_t count) {
    for (size_t i = 0; i < count; i++) p[i] = (float)(rng_uniform(r) * 4.0 - 2.0);
}

/* out[h·hd + d] for one row: its query against positions 0..len-1 of its
 * sequence, read from the cache as the kernels do (prefix from slot 0). */
static void reference_row(const struct kv_cache *c, int layer, int slot, int len, const float *q, int hd,
                          float *kbuf, float *vbuf, float *out) {
    int group = N_HEADS / N_KV_HEADS;
    double *s = malloc((size_t)len * sizeof *s);
    for (int h = 0; h < N_HEADS; h++) {
        int kvh = h / group, P = c->prefix_len[slot];
        const float *Kp = kv_cache_rows(c, KV_KEYS, c->prefix_slot[slot], layer, kvh, 0, P, kbuf);
        const float *Vp = kv_cache_rows(c, KV_VALUES, c->prefix_slot[slot], layer, kvh, 0, P, vbuf);
        const float *Ko = kv_cache_rows(c, KV_KEYS, slot, layer, kvh, P, len, kbuf + (size_t)P * hd);
        const float *Vo = kv_cache_rows(c, KV_VALUES, slot, layer, kvh, P, len, vbuf + (size_t)P * hd);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < len; j++) {
            const float *k = j < P ? Kp + (size_t)j * hd : Ko + (size_t)(j - P) * hd;
            double dot = 0;
            for (int d = 0; d < hd; d++) dot += (double)q[h * hd + d] * k[d];
            s[j] = dot / sqrt((double)hd);
            if (s[j] > mx) mx = s[j];
        }
        for (int j = 0; j < len; j++) sum += (s[j] = exp(s[j] - mx));
        for (int d = 0; d < hd; d++) {
            double acc = 0;
            for (int j = 0; j < len; j++) acc += s[j] * (j < P ? Vp[(size_t)j * hd + d] : Vo[(size_t)(j - P) * hd + d]);
            out[h * hd + d] = (float)(acc / sum);
        }
    }
    free(s);
}

static void check_case(struct th *t, int hd, int rows, enum kv_dtype dtype) {
    struct dsr_rng r;
    rng_seed(&r, (uint64_t)(hd * 100 + rows));
    int n_slots = rows; /* slot 0 holds the prefix and is a member too */
    int max_len = PREFIX + MAX_OWN + 1, kv_dim = N_KV_HEADS * hd, q_dim = N_HEADS * hd;
    struct kv_cache c = {0};
    struct dsr_err err = {{0}};
    if (!TH_CHECK(t, kv_cache_init(&c, n_slots, N_LAYERS, max_len, N_KV_HEADS, hd, dtype, &err) == 0, "init: %s",
                  err.msg))
        return;
    float *k = malloc((size_t)max_len * kv_dim * sizeof *k), *v = malloc((size_t)max_len * kv_dim * sizeof *v);
    for (int l = 0; l < N_LAYERS; l++) {
        fill(&r, k, (size_t)PREFIX * kv_dim);
        fill(&r, v, (size_t)PREFIX * kv_dim);
        kv_cache_write(&c, 0, l, 0, k, v, PREFIX);
    }
    c.len[0] = PREFIX;
    for (int s = 1; s < n_slots; s++) TH_CHECK(t, kv_cache_share_prefix(&c, s, 0, &err) == 0, "share: %s", err.msg);
    /* each member's own positions, its new row's included: 1 .. MAX_OWN + 1 */
    struct lm_segment segs[MAX_ROWS];
    int row0[MAX_ROWS];
    unsigned char is_short[MAX_ROWS];
    for (int s = 0; s < n_slots; s++) {
        int own = (s * 7) % (MAX_OWN + 1);
        for (int l = 0; l < N_LAYERS; l++) {
            fill(&r, k, (size_t)(own + 1) * kv_dim);
            fill(&r, v, (size_t)(own + 1) * kv_dim);
            kv_cache_write(&c, s, l, PREFIX, k, v, own + 1);
        }
        c.len[s] = PREFIX + own;
        segs[s] = (struct lm_segment){.slot = s, .n = 1};
        row0[s] = s;
        is_short[s] = 1;
    }
    float *q = malloc((size_t)rows * q_dim * sizeof *q), *fast = malloc((size_t)rows * q_dim * sizeof *fast),
          *port = malloc((size_t)rows * q_dim * sizeof *port), *want = malloc((size_t)rows * q_dim * sizeof *want);
    float *kbuf = malloc((size_t)max_len * hd * sizeof *kbuf), *vbuf = malloc((size_t)max_len * hd * sizeof *vbuf);
    for (int l = 0; l < N_LAYERS; l++) {
        fill(&r, q, (size_t)rows * q_dim);
        int rc = attention_decode(q, &c, l, segs, row0, is_short, n_slots, N_HEADS, N_KV_HEADS, hd, DECODE_ISA_AUTO,
                                  fast, &err) ||
                 attention_decode(q, &c, l, segs, row0, is_short, n_slots, N_HEADS, N_KV_HEADS, hd,
                                  DECODE_ISA_PORTABLE, port, &err);
        if (!TH_CHECK(t, rc == 0, "attention_decode: %s", err.msg)) break;
        TH_CHECK(t, memcmp(fast, port, (size_t)rows * q_dim * sizeof *fast) == 0,
                 "head_dim %d, %d rows, %s cache, layer %d: vector paths differ from the portable loops", hd, rows,
                 kv_dtype_name(dtype), l);
        for (int s = 0; s < n_slots; s++)
            reference_row(&c, l, s, c.len[s] + 1, q + (size_t)s * q_dim, hd, kbuf, vbuf, want + (size_t)s * q_dim);
        TH_CLOSE(t, "decode attention vs double reference", fast, want, (size_t)rows * q_dim, 1e-5);
    }
    free(q), free(fast), free(port), free(want), free(kbuf), free(vbuf), free(k), free(v);
    kv_cache_free(&c);
}

static void test_paths(struct th *t) {
    static const int dims[] = {64, 128, 20}, groups[] = {8, 12, 16, 3};
    for (int d = 0; d < 3; d++)
        for (int g = 0; g < 4; g++) {
            check_case(t, dims[d], groups[g], KV_F32);
            check_case(t, dims[d], groups[g], KV_BF16);
        }
}

int main(void) {
    struct th t = {0};
    th_run(&t, "paths", test_paths);
    return th_finish(&t, "test_attention_decode");
}
