/* gemm_small (core/nn/gemm_small.h) and op_linear's dispatch to it: results
 * against a double-precision reference and against cblas_sgemm over many
 * shapes (input widths that are not multiples of the 8-float vector, output
 * counts that are not multiples of the 4-row block, batch sizes around the
 * 3-row block and the dispatch threshold), with and without bias, on
 * unaligned buffers, for the SIMD and the portable path; that nothing outside
 * out[n * out_dim] is written; that the result does not depend on the
 * thread count; that the SIMD kernel sums in exactly the order documented in
 * gemm_small.h (bit-identical to a scalar model of it).  gemm_bf16_run: with
 * a BF16 weight the SIMD kernel follows its own documented order bit for bit
 * at every batch size up to GEMM_BF16_SMALL_MAX_ROWS (the 512-bit kernel and
 * the AVX2-only ones), and every path matches the
 * double reference on the BF16-rounded weight. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm_small.h"
#include "harness.h"
#include "nn/ops.h"
#include "base/rng.h"
#include "io/safetensors.h"

/* Float accumulation over ≤ 1024 terms against a double reference. */
#define TOL 1e-5
#define GUARD 8 /* floats after out that must stay untouched */
#define SENTINEL -12345.0f

struct problem {
    int n, in_dim, out_dim, has_bias;
    float *in, *weight, *bias; /* bias NULL when !has_bias */
    float *want;               /* float-rounded double reference */
    void *blocks[3];           /* allocations (pointers above may be offset) */
};

static float *fill(struct dsr_rng *r, float *p, size_t count) {
    for (size_t i = 0; i < count; i++) p[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
    return p;
}

/* p->want: the double-precision product of p's inputs, rounded to float. */
static void reference(struct problem *p) {
    for (int i = 0; i < p->n; i++)
        for (int o = 0; o < p->out_dim; o++) {
            double s = p->bias ? p->bias[o] : 0.0;
            for (int k = 0; k < p->in_dim; k++)
                s += (double)p->in[(size_t)i * p->in_dim + k] * p->weight[(size_t)o * p->in_dim + k];
            p->want[(size_t)i * p->out_dim + o] = (float)s;
        }
}

/* Random problem; with `misalign` every buffer starts one float past a
 * 32-byte boundary, so no vector load is aligned. */
static int problem_init(struct problem *p, struct dsr_rng *r, int n, int in_dim, int out_dim, int has_bias,
                        int misalign) {
    memset(p, 0, sizeof *p);
    p->n = n, p->in_dim = in_dim, p->out_dim = out_dim, p->has_bias = has_bias;
    size_t off = misalign ? 1 : 0;
    size_t n_in = (size_t)n * in_dim, n_w = (size_t)out_dim * in_dim;
    p->blocks[0] = aligned_alloc(32, ((n_in + off) * sizeof(float) + 31) / 32 * 32);
    p->blocks[1] = aligned_alloc(32, ((n_w + off) * sizeof(float) + 31) / 32 * 32);
    p->blocks[2] = aligned_alloc(32, ((out_dim + off) * sizeof(float) + 31) / 32 * 32);
    p->want = malloc((size_t)n * out_dim * sizeof(float));
    if (!p->blocks[0] || !p->blocks[1] || !p->blocks[2] || !p->want) return -1;
    p->in = fill(r, (float *)p->blocks[0] + off, n_in);
    p->weight = fill(r, (float *)p->blocks[1] + off, n_w);
    p->bias = has_bias ? fill(r, (float *)p->blocks[2] + off, (size_t)out_dim) : NULL;
    reference(p);
    return 0;
}

static void problem_free(struct problem *p) {
    for (int i = 0; i < 3; i++) free(p->blocks[i]);
    free(p->want);
}

/* Output buffer with GUARD sentinels after the n * out_dim results. */
static float *out_alloc(const struct problem *p) {
    size_t count = (size_t)p->n * p->out_dim;
    float *out = malloc((count + GUARD) * sizeof(float));
    if (out)
        for (size_t i = 0; i < count + GUARD; i++) out[i] = SENTINEL;
    return out;
}

static int guards_intact(const struct problem *p, const float *out) {
    size_t count = (size_t)p->n * p->out_dim;
    for (int g = 0; g < GUARD; g++)
        if (out[count + g] != SENTINEL) return 0;
    return 1;
}

/* gemm_small_run on one problem with the given path, checked against the
 * reference (and returned in *got for further comparison; caller frees). */
static void check_run(struct th *t, const struct problem *p, int use_simd, float **got) {
    char what[96];
    snprintf(what, sizeof what, "%s n=%d in=%d out=%d bias=%d", use_simd ? "simd" : "portable", p->n, p->in_dim,
             p->out_dim, p->has_bias);
    float *out = out_alloc(p);
    if (!TH_CHECK(t, out != NULL, "out of memory")) return;
    gemm_small_run(out, p->in, p->weight, p->bias, p->n, p->in_dim, p->out_dim, use_simd);
    TH_CLOSE(t, what, out, p->want, (size_t)p->n * p->out_dim, TOL);
    TH_CHECK(t, guards_intact(p, out), "%s: wrote past the output", what);
    if (got) *got = out;
    else free(out);
}

/* Plain cblas_sgemm (+ bias) for the same problem. */
static float *sgemm_result(const struct problem *p) {
    float *out = malloc((size_t)p->n * p->out_dim * sizeof(float));
    if (!out) return NULL;
    for (int i = 0; i < p->n; i++)
        for (int o = 0; o < p->out_dim; o++) out[(size_t)i * p->out_dim + o] = p->bias ? p->bias[o] : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->n, p->out_dim, p->in_dim, 1.0f, p->in, p->in_dim,
                p->weight, p->in_dim, 1.0f, out, p->out_dim);
    return out;
}

static void check_shape(struct th *t, struct dsr_rng *r, int n, int in_dim, int out_dim, int has_bias,
                        int misalign) {
    struct problem p;
    if (!TH_CHECK(t, problem_init(&p, r, n, in_dim, out_dim, has_bias, misalign) == 0, "out of memory")) {
        problem_free(&p);
        return;
    }
    float *simd = NULL, *ref = sgemm_result(&p);
    check_run(t, &p, 1, &simd);
    check_run(t, &p, 0, NULL);
    if (simd && ref) {
        char what[96];
        snprintf(what, sizeof what, "simd vs sgemm n=%d in=%d out=%d bias=%d", n, in_dim, out_dim, has_bias);
        TH_CLOSE(t, what, simd, ref, (size_t)n * out_dim, TOL);
    }
    free(simd);
    free(ref);
    problem_free(&p);
}

static void test_shapes(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 11);
    const int ns[] = {3, 4, 5, 6, 7, 8, 16, 31, 32, 33, 64};
    const int ins[] = {1, 7, 8, 13, 100, 1024};
    const int outs[] = {1, 4, 5, 17};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ins / sizeof ins[0]; b++)
            for (size_t c = 0; c < sizeof outs / sizeof outs[0]; c++)
                for (int bias = 0; bias < 2; bias++) check_shape(t, &r, ns[a], ins[b], outs[c], bias, 0);
}

/* The decode shape: a 2816-row weight (threaded path), odd and even widths. */
static void test_wide_output(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 12);
    const int ns[] = {3, 17, 64};
    const int ins[] = {13, 1024};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ins / sizeof ins[0]; b++) check_shape(t, &r, ns[a], ins[b], 2816, (int)b, 0);
}

static void test_unaligned(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 13);
    check_shape(t, &r, 5, 1024, 17, 1, 1);
    check_shape(t, &r, 8, 100, 2816, 0, 1);
    check_shape(t, &r, 3, 7, 5, 1, 1);
}

/* op_linear on either side of both dispatch boundaries (sgemv | gemm_small |
 * sgemm) agrees with the reference. */
static void test_op_linear_dispatch(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 14);
    const int ns[] = {1, 2, 3, GEMM_SMALL_MAX_ROWS, GEMM_SMALL_MAX_ROWS + 1};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (int bias = 0; bias < 2; bias++) {
            struct problem p;
            if (!TH_CHECK(t, problem_init(&p, &r, ns[a], 100, 260, bias, 0) == 0, "out of memory")) {
                problem_free(&p);
                return;
            }
            float *out = out_alloc(&p);
            if (TH_CHECK(t, out != NULL, "out of memory")) {
                char what[64];
                snprintf(what, sizeof what, "op_linear n=%d bias=%d", p.n, bias);
                op_linear(out, p.in, p.weight, p.bias, p.n, p.in_dim, p.out_dim);
                TH_CLOSE(t, what, out, p.want, (size_t)p.n * p.out_dim, TOL);
                TH_CHECK(t, guards_intact(&p, out), "%s: wrote past the output", what);
            }
            free(out);
            problem_free(&p);
        }
}

/* Each output's summation order is fixed by the kernel, not by how the rows
 * are split between threads: 1 and 2 threads give identical bits. */
static void test_thread_independent(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 15);
    struct problem p;
    if (!TH_CHECK(t, problem_init(&p, &r, 9, 300, 1001, 1, 0) == 0, "out of memory")) {
        problem_free(&p);
        return;
    }
    size_t count = (size_t)p.n * p.out_dim;
    float *a = out_alloc(&p), *b = out_alloc(&p);
    int threads = dsr_get_threads();
    if (TH_CHECK(t, a && b, "out of memory")) {
        dsr_set_threads(1);
        gemm_small(a, p.in, p.weight, p.bias, p.n, p.in_dim, p.out_dim);
        dsr_set_threads(2);
        gemm_small(b, p.in, p.weight, p.bias, p.n, p.in_dim, p.out_dim);
        TH_CHECK(t, memcmp(a, b, count * sizeof(float)) == 0, "1-thread and 2-thread results differ");
    }
    dsr_set_threads(threads);
    free(a);
    free(b);
    problem_free(&p);
}

/* The summation order of gemm_small.h, one output at a time in scalars:
 * fmaf rounds once, like the vector FMA. */
static float documented_dot(const float *x, const float *w, const float *bias, int k) {
    float lane[8] = {0};
    int k8 = k & ~7;
    for (int j = 0; j < k8; j++) lane[j % 8] = fmaf(x[j], w[j], lane[j % 8]);
    for (int j = 0; j < 4; j++) lane[j] += lane[j + 4];
    for (int j = 0; j < 2; j++) lane[j] += lane[j + 2];
    float s = lane[0] + lane[1];
    for (int j = k8; j < k; j++) s += x[j] * w[j];
    if (bias) s += *bias;
    return s;
}

/* gemm_bf16_run's small-batch order (gemm_small.c, the BF16 kernels): per
 * 16-element block, lane j takes element 2j then 2j+1; then the lanes as
 * above.  The same for every batch size. */
static float documented_dot_bf16(const float *x, const float *w, const float *bias, int k) {
    float lane[8] = {0};
    int k16 = k & ~15;
    for (int b = 0; b < k16; b += 16)
        for (int j = 0; j < 8; j++) {
            lane[j] = fmaf(w[b + 2 * j], x[b + 2 * j], lane[j]);
            lane[j] = fmaf(w[b + 2 * j + 1], x[b + 2 * j + 1], lane[j]);
        }
    for (int j = 0; j < 4; j++) lane[j] += lane[j + 4];
    for (int j = 0; j < 2; j++) lane[j] += lane[j + 2];
    float s = lane[0] + lane[1];
    for (int j = k16; j < k; j++) s += w[j] * x[j];
    if (bias) s += *bias;
    return s;
}

/* The SIMD kernel matches the scalar model bit for bit, for batch sizes that
 * use every input-group width and widths with and without a tail, up to the
 * MLP's 2816 (+3): any change of order (blocking over k included) shows. */
static void test_documented_order(struct th *t) {
    if (!gemm_small_simd_supported()) return;
    struct dsr_rng r;
    rng_seed(&r, 16);
    const int ns[] = {2, 4, 5, 6, 7, 8, 9, 11, 16, 17, 31, 32};
    const int ins[] = {7, 8, 13, 1024, 2819};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ins / sizeof ins[0]; b++) {
            struct problem p;
            if (!TH_CHECK(t, problem_init(&p, &r, ns[a], ins[b], 9, 1, (int)(b % 2)) == 0, "out of memory")) {
                problem_free(&p);
                return;
            }
            float *out = out_alloc(&p);
            /* 1: the best kernel for this CPU (AVX-512: 6 inputs a block),
             * GEMM_AVX2_ONLY: the 3-input one */
            for (int use_simd = 1; out && use_simd <= GEMM_AVX2_ONLY; use_simd++) {
                gemm_small_run(out, p.in, p.weight, p.bias, p.n, p.in_dim, p.out_dim, use_simd);
                int same = 1;
                for (int i = 0; i < p.n; i++)
                    for (int o = 0; o < p.out_dim; o++) {
                        float want = documented_dot(p.in + (size_t)i * p.in_dim, p.weight + (size_t)o * p.in_dim,
                                                    p.bias + o, p.in_dim);
                        if (memcmp(&want, &out[(size_t)i * p.out_dim + o], sizeof want) != 0) same = 0;
                    }
                TH_CHECK(t, same, "n=%d in=%d use_simd=%d: result differs from the documented summation order", p.n,
                         p.in_dim, use_simd);
                TH_CHECK(t, guards_intact(&p, out), "n=%d in=%d use_simd=%d: wrote past the output", p.n, p.in_dim,
                         use_simd);
            }
            TH_CHECK(t, out != NULL, "out of memory");
            free(out);
            problem_free(&p);
        }
}

/* n = 0 or out_dim = 0: nothing is written. */
/* A BF16 copy of the problem's weight; the problem's float weight and its
 * reference become those of the rounded values. */
static uint16_t *round_to_bf16(struct problem *p) {
    size_t n_w = (size_t)p->out_dim * p->in_dim;
    /* one element of slack before the copy, so its start can be misaligned too */
    uint16_t *block = malloc((n_w + 1) * sizeof *block);
    if (!block) return NULL;
    uint16_t *w = block + 1;
    for (size_t i = 0; i < n_w; i++) {
        w[i] = st_f32_to_bf16(p->weight[i]);
        p->weight[i] = st_bf16_to_f32(w[i]);
    }
    reference(p);
    return w;
}

static void check_bf16(struct th *t, struct dsr_rng *r, int n, int in_dim, int out_dim, int has_bias) {
    struct problem p;
    uint16_t *w = NULL;
    if (!TH_CHECK(t, problem_init(&p, r, n, in_dim, out_dim, has_bias, 1) == 0 && (w = round_to_bf16(&p)),
                  "out of memory"))
        goto out;
    /* 0 portable, 1 the best kernel for this CPU, GEMM_AVX2_ONLY the
     * AVX2 kernels that CPUs without AVX-512 run */
    for (int use_simd = 0; use_simd <= GEMM_AVX2_ONLY; use_simd++) {
        char what[96];
        snprintf(what, sizeof what, "bf16 %s n=%d in=%d out=%d bias=%d",
                 use_simd == 0 ? "portable" : use_simd == 1 ? "simd" : "avx2-only", n, in_dim, out_dim, has_bias);
        float *got = out_alloc(&p);
        if (!TH_CHECK(t, got != NULL, "out of memory")) continue;
        TH_CHECK(t, gemm_bf16_run(got, p.in, w, p.bias, n, in_dim, out_dim, use_simd) == 0, "%s failed", what);
        TH_CLOSE(t, what, got, p.want, (size_t)n * out_dim, TOL);
        TH_CHECK(t, guards_intact(&p, got), "%s: wrote past the output", what);
        if (use_simd && n <= GEMM_BF16_SMALL_MAX_ROWS && gemm_small_simd_supported()) {
            int same = 1;
            for (int i = 0; i < n; i++)
                for (int o = 0; o < out_dim; o++) {
                    float want = documented_dot_bf16(p.in + (size_t)i * in_dim, p.weight + (size_t)o * in_dim,
                                                     p.bias ? p.bias + o : NULL, in_dim);
                    same &= memcmp(&want, &got[(size_t)i * out_dim + o], sizeof want) == 0;
                }
            TH_CHECK(t, same, "%s differs from the documented BF16 order", what);
        }
        free(got);
    }
out:
    free(w ? w - 1 : NULL);
    problem_free(&p);
}

static void test_bf16(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 19);
    const int ns[] = {1, 2, 3, 4, 5, 7, 32, 33, 64, 65, 70};
    const int ins[] = {1, 7, 8, 13, 100, 257};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ins / sizeof ins[0]; b++) check_bf16(t, &r, ns[a], ins[b], 9, (int)(a + b) % 2);
    /* 8-row (one input) and 4-row (more) blocks split over threads (≥ 64 Ki
     * weights, a partial block), widths with and without a 16-element tail,
     * an odd number of inputs */
    check_bf16(t, &r, 1, 1024, 67, 1);
    check_bf16(t, &r, 1, 1039, 70, 0);
    check_bf16(t, &r, 5, 1039, 70, 1);
    /* the wide kernel split over threads, with and without bias */
    check_bf16(t, &r, 40, 64, 600, 1);
    check_bf16(t, &r, 4, 64, 600, 0);
    /* panels (more than GEMM_BF16_SMALL_MAX_ROWS rows): a weight wider than
     * a 16 MiB panel holds 256 rows of, in two panels (256 + 44 rows) */
    check_bf16(t, &r, 65, 20000, 300, 1);
}

/* gemm_bf16_backward_input: din = beta·din + dy · widen(W) against double,
 * in one panel and in two (a weight wider than 16 MiB / 256 rows). */
static void test_bf16_backward_input(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 23);
    const int shapes[][3] = {{3, 40, 70}, {3, 20000, 300}}; /* n, in_dim, out_dim */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], in_dim = shapes[s][1], out_dim = shapes[s][2];
        size_t n_w = (size_t)out_dim * in_dim, n_din = (size_t)n * in_dim;
        uint16_t *w = malloc(n_w * sizeof *w);
        float *dy = malloc((size_t)n * out_dim * sizeof *dy), *din = malloc(n_din * sizeof *din);
        float *want = malloc(n_din * sizeof *want);
        if (TH_CHECK(t, w && dy && din && want, "out of memory")) {
            for (size_t i = 0; i < n_w; i++) w[i] = st_f32_to_bf16((float)(rng_uniform(&r) * 2.0 - 1.0));
            fill(&r, dy, (size_t)n * out_dim);
            fill(&r, din, n_din);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < in_dim; k++) {
                    double acc = 0.5 * din[(size_t)i * in_dim + k];
                    for (int o = 0; o < out_dim; o++)
                        acc += (double)dy[(size_t)i * out_dim + o] * st_bf16_to_f32(w[(size_t)o * in_dim + k]);
                    want[(size_t)i * in_dim + k] = (float)acc;
                }
            char what[64];
            snprintf(what, sizeof what, "backward input n=%d in=%d out=%d", n, in_dim, out_dim);
            TH_CHECK(t, gemm_bf16_backward_input(din, dy, w, n, in_dim, out_dim, 0.5f) == 0, "%s failed", what);
            TH_CLOSE(t, what, din, want, n_din, TOL);
        }
        free(w);
        free(dy);
        free(din);
        free(want);
    }
}

/* op_linear_group against op_linear_w one weight at a time, bit for bit:
 * float32 and BF16 weights mixed in one group, output sizes that split
 * unevenly into blocks and threads, batch sizes inside the small kernels'
 * ranges (one parallel region) and outside them (one product after
 * another), on 1 and 2 threads; nothing written past any output. */
static void test_group(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 29);
    enum { JOBS = 3 };
    const int out_dims[JOBS] = {203, 66, 66}, in_dim = 261;
    const int ns[] = {1, 2, 3, 7, 32, 33, 64, 65};
    struct problem p[JOBS] = {{0}};
    uint16_t *w16[JOBS] = {0};
    int ok = 1;
    for (int j = 0; j < JOBS; j++) {
        ok &= problem_init(&p[j], &r, 65, in_dim, out_dims[j], j != 1, j == 2) == 0;
        if (ok && j != 0) ok &= (w16[j] = round_to_bf16(&p[j])) != NULL; /* job 0 stays float32 */
    }
    int threads = dsr_get_threads();
    for (size_t a = 0; ok && a < sizeof ns / sizeof ns[0]; a++)
        for (int nt = 1; nt <= 2; nt++) {
            int n = ns[a];
            dsr_set_threads(nt);
            float *got[JOBS] = {0}, *want[JOBS] = {0};
            struct gemm_small_job jobs[JOBS];
            for (int j = 0; j < JOBS; j++) {
                p[j].n = n; /* the first n of the 65 input rows (all problems share none: any input works) */
                got[j] = out_alloc(&p[j]), want[j] = out_alloc(&p[j]);
                struct weight w = j == 0 ? (struct weight){.f32 = p[j].weight} : (struct weight){.bf16 = w16[j]};
                jobs[j] = (struct gemm_small_job){got[j], w, p[j].bias, out_dims[j]};
                if (got[j] && want[j])
                    TH_CHECK(t, op_linear_w(want[j], p[0].in, w, p[j].bias, n, in_dim, out_dims[j], NULL) == 0,
                             "op_linear_w failed");
            }
            if (TH_CHECK(t, got[0] && got[1] && got[2] && want[0] && want[1] && want[2], "out of memory") &&
                TH_CHECK(t, op_linear_group(jobs, JOBS, p[0].in, n, in_dim, NULL) == 0, "op_linear_group failed"))
                for (int j = 0; j < JOBS; j++) {
                    TH_CHECK(t, memcmp(got[j], want[j], (size_t)n * out_dims[j] * sizeof(float)) == 0,
                             "group job %d (n=%d, %d threads) differs from op_linear_w", j, n, nt);
                    TH_CHECK(t, guards_intact(&p[j], got[j]), "group job %d (n=%d) wrote past its output", j, n);
                }
            for (int j = 0; j < JOBS; j++) {
                free(got[j]);
                free(want[j]);
            }
        }
    dsr_set_threads(threads);
    TH_CHECK(t, ok, "out of memory");
    for (int j = 0; j < JOBS; j++) {
        free(w16[j] ? w16[j] - 1 : NULL);
        p[j].n = 65;
        problem_free(&p[j]);
    }
}

static void test_empty(struct th *t) {
    float in[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1}, bias[1] = {5}, out[2] = {SENTINEL, SENTINEL};
    for (int simd = 0; simd < 2; simd++) {
        gemm_small_run(out, in, w, bias, 0, 4, 1, simd);
        gemm_small_run(out, in, w, bias, 1, 4, 0, simd);
    }
    TH_CHECK(t, out[0] == SENTINEL && out[1] == SENTINEL, "empty problem wrote output");
}

int main(void) {
    struct th t = {0};
    printf("gemm_small: %s kernel on this CPU\n", gemm_small_simd_supported() ? "AVX2+FMA" : "no SIMD");
    th_run(&t, "shapes", test_shapes);
    th_run(&t, "wide_output", test_wide_output);
    th_run(&t, "unaligned", test_unaligned);
    th_run(&t, "op_linear_dispatch", test_op_linear_dispatch);
    th_run(&t, "thread_independent", test_thread_independent);
    th_run(&t, "documented_order", test_documented_order);
    th_run(&t, "group", test_group);
    th_run(&t, "empty", test_empty);
    th_run(&t, "bf16", test_bf16);
    th_run(&t, "bf16_backward_input", test_bf16_backward_input);
    return th_finish(&t, "test_gemm_small");
}
