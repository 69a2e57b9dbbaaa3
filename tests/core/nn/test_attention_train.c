/* Row-blocked causal attention of the trainer (core/nn/attention_train.h):
 * forward output and dq/dk/dv against a straightforward double-precision
 * reference (full n×n causal softmax), for sequence lengths that are not a
 * multiple of the block (2·B + 37), shorter than one block, exactly one
 * block, and with block sizes 1 and ≥ n; multi-head, grouped-query and
 * multi-query head layouts.  dk/dv start nonzero to check they accumulate.
 * The scratch is allocated at exactly ta_scratch_floats(), so the ASan build
 * catches any write past the documented bound. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "base/rng.h"
#include "nn/attention_train.h"

/* Float GEMMs over ≤ n terms, compared relative to the largest magnitude. */
#define TOL 1e-5

struct attn_case {
    struct ta_dims d;
    int n;
    float *q, *k, *v, *d_out;      /* inputs */
    float *dk0, *dv0;              /* initial dk, dv (accumulated onto) */
    float *out, *dq, *dk, *dv;     /* reference, float-rounded from double */
};

static float *random_floats(struct dsr_rng *r, size_t count, double amp) {
    float *p = malloc(count * sizeof(float));
    if (p)
        for (size_t i = 0; i < count; i++) p[i] = (float)((rng_uniform(r) * 2.0 - 1.0) * amp);
    return p;
}

/* Reference: per head, full causal scores in double, softmax, out; then the
 * backward through the same formulas. */
static void reference(struct attn_case *c) {
    int n = c->n, hd = c->d.head_dim, H = c->d.n_heads, group = H / c->d.n_kv_heads;
    size_t Qs = (size_t)H * hd, KVs = (size_t)c->d.n_kv_heads * hd;
    double scale = 1.0 / sqrt((double)hd);
    double *P = malloc((size_t)n * n * sizeof(double)), *dS = malloc((size_t)n * n * sizeof(double));
    double *dk = calloc((size_t)n * KVs, sizeof(double)), *dv = calloc((size_t)n * KVs, sizeof(double));
    for (size_t i = 0; i < (size_t)n * KVs; i++) dk[i] = c->dk0[i], dv[i] = c->dv0[i];
    for (int h = 0; h < H; h++) {
        size_t qo = (size_t)h * hd, ko = (size_t)(h / group) * hd;
        for (int i = 0; i < n; i++) {
            double mx = -INFINITY, sum = 0, dot = 0;
            double *p = P + (size_t)i * n, *g = dS + (size_t)i * n;
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int e = 0; e < hd; e++) s += (double)c->q[i * Qs + qo + e] * c->k[j * KVs + ko + e];
                p[j] = s * scale;
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j <= i; j++) sum += p[j] = exp(p[j] - mx);
            for (int j = 0; j <= i; j++) p[j] /= sum;
            for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int j = 0; j <= i; j++) o += p[j] * c->v[j * KVs + ko + e];
                c->out[i * Qs + qo + e] = (float)o;
            }
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int e = 0; e < hd; e++) s += (double)c->d_out[i * Qs + qo + e] * c->v[j * KVs + ko + e];
                g[j] = s;
                dot += p[j] * s;
            }
            for (int j = 0; j <= i; j++) g[j] = p[j] * (g[j] - dot);
            for (int e = 0; e < hd; e++) {
                double s = 0;
                for (int j = 0; j <= i; j++) s += g[j] * c->k[j * KVs + ko + e];
                c->dq[i * Qs + qo + e] = (float)(scale * s);
            }
            for (int j = 0; j <= i; j++)
                for (int e = 0; e < hd; e++) {
                    dk[j * KVs + ko + e] += scale * g[j] * c->q[i * Qs + qo + e];
                    dv[j * KVs + ko + e] += p[j] * c->d_out[i * Qs + qo + e];
                }
        }
    }
    for (size_t i = 0; i < (size_t)n * KVs; i++) c->dk[i] = (float)dk[i], c->dv[i] = (float)dv[i];
    free(P), free(dS), free(dk), free(dv);
}

static int case_init(struct attn_case *c, struct dsr_rng *r, int n, int heads, int kv_heads, int hd) {
    memset(c, 0, sizeof *c);
    c->d = (struct ta_dims){.n_heads = heads, .n_kv_heads = kv_heads, .head_dim = hd};
    c->n = n;
    size_t nq = (size_t)n * heads * hd, nkv = (size_t)n * kv_heads * hd;
    /* amplitude 2: scores of a few units, so the softmax rows are far from uniform */
    c->q = random_floats(r, nq, 2.0), c->k = random_floats(r, nkv, 2.0), c->v = random_floats(r, nkv, 1.0);
    c->d_out = random_floats(r, nq, 1.0), c->dk0 = random_floats(r, nkv, 0.1), c->dv0 = random_floats(r, nkv, 0.1);
    c->out = malloc(nq * sizeof(float)), c->dq = malloc(nq * sizeof(float));
    c->dk = malloc(nkv * sizeof(float)), c->dv = malloc(nkv * sizeof(float));
    if (!c->q || !c->k || !c->v || !c->d_out || !c->dk0 || !c->dv0 || !c->out || !c->dq || !c->dk || !c->dv)
        return -1;
    reference(c);
    return 0;
}

static void case_free(struct attn_case *c) {
    free(c->q), free(c->k), free(c->v), free(c->d_out), free(c->dk0), free(c->dv0);
    free(c->out), free(c->dq), free(c->dk), free(c->dv);
}

/* Runs ta_forward + ta_backward with the given block and compares. */
static void check_blocked(struct th *t, struct attn_case *c, int block_rows) {
    struct ta_dims d = c->d;
    d.block_rows = block_rows;
    size_t nq = (size_t)c->n * d.n_heads * d.head_dim, nkv = (size_t)c->n * d.n_kv_heads * d.head_dim;
    float *scratch = malloc(ta_scratch_floats(c->n, block_rows) * sizeof(float));
    float *out = malloc(nq * sizeof(float)), *dq = malloc(nq * sizeof(float));
    float *dk = malloc(nkv * sizeof(float)), *dv = malloc(nkv * sizeof(float));
    if (!TH_CHECK(t, scratch && out && dq && dk && dv, "out of memory")) goto done;
    memcpy(dk, c->dk0, nkv * sizeof(float));
    memcpy(dv, c->dv0, nkv * sizeof(float));
    ta_forward(&d, c->n, c->q, c->k, c->v, out, scratch);
    ta_backward(&d, c->n, c->q, c->k, c->v, c->d_out, dq, dk, dv, scratch);
    char prefix[64], name[80];
    snprintf(prefix, sizeof prefix, "n=%d heads=%d/%d hd=%d B=%d", c->n, d.n_heads, d.n_kv_heads, d.head_dim,
             block_rows);
    snprintf(name, sizeof name, "%s out", prefix);
    TH_CLOSE(t, name, out, c->out, nq, TOL);
    snprintf(name, sizeof name, "%s dq", prefix);
    TH_CLOSE(t, name, dq, c->dq, nq, TOL);
    snprintf(name, sizeof name, "%s dk", prefix);
    TH_CLOSE(t, name, dk, c->dk, nkv, TOL);
    snprintf(name, sizeof name, "%s dv", prefix);
    TH_CLOSE(t, name, dv, c->dv, nkv, TOL);
done:
    free(scratch), free(out), free(dq), free(dk), free(dv);
}

/* n = 2·B + 37 and n < B for the trainer's block and a small one, across
 * head layouts: 4 heads over 2 KV heads (GQA), 3 over 1 (MQA), 2 over 2. */
static void test_against_reference(struct th *t) {
    static const int layouts[][3] = {{4, 2, 16}, {3, 1, 8}, {2, 2, 32}};
    static const int blocks[] = {TA_BLOCK_ROWS, 16};
    struct dsr_rng r;
    rng_seed(&r, 11);
    for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++)
        for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
            int B = blocks[bi], lengths[] = {2 * B + 37, B - 5 > 0 ? B - 5 : 1, B};
            for (int ni = 0; ni < 3; ni++) {
                struct attn_case c;
                if (!TH_CHECK(t, case_init(&c, &r, lengths[ni], layouts[li][0], layouts[li][1], layouts[li][2]) == 0,
                              "out of memory"))
                    return;
                check_blocked(t, &c, B);
                case_free(&c);
            }
        }
}

/* Degenerate blocks: one row per block, and one block covering everything
 * (the unblocked n×n products). */
static void test_block_extremes(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 12);
    struct attn_case c;
    if (!TH_CHECK(t, case_init(&c, &r, 45, 4, 2, 16) == 0, "out of memory")) return;
    check_blocked(t, &c, 1);
    check_blocked(t, &c, 45);
    check_blocked(t, &c, 1000);
    case_free(&c);
}

/* The scratch bound: min(B, n) rows of n, twice. */
static void test_scratch_bound(struct th *t) {
    TH_CHECK(t, ta_scratch_floats(300, 128) == 2 * 128 * 300, "n > B: %zu", ta_scratch_floats(300, 128));
    TH_CHECK(t, ta_scratch_floats(50, 128) == 2 * 50 * 50, "n < B: %zu", ta_scratch_floats(50, 128));
}

int main(void) {
    struct th t = {0};
    th_run(&t, "against_reference", test_against_reference);
    th_run(&t, "block_extremes", test_block_extremes);
    th_run(&t, "scratch_bound", test_scratch_bound);
    return th_finish(&t, "test_attention_train");
}
