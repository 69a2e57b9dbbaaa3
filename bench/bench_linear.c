/* bench_linear: op_linear at decode batch sizes against plain cblas_sgemm and
 * the small-batch kernel (core/nn/gemm_small.h) on its own, at the mid-size
 * model's shapes, with the weight cold (caches flushed before every call,
 * as in a decode step where each layer's weights were evicted by the others).
 *
 *   shapes  1024→2816 (MLP up), 2816→1024 (MLP down), 1024→32000 (lm_head);
 *   n       1, 2, 4, 8, 16, 32, 64 input rows.
 *
 * The fourth column is gemm_bf16_run on the same weight stored as BF16 (the
 * --weights-dtype bf16 path), with its speed-up over op_linear's float32.
 *
 * GB/s counts the weight bytes streamed (out_dim · in_dim · 4, or · 2 for
 * BF16) per call;
 * GFLOP/s counts 2 · n · out_dim · in_dim.  Each cell is the best of --reps
 * consecutive timed calls after a pause and one warm-up call (the run least
 * disturbed by the rest of the system, as in bench_machine).  OMP_WAIT_POLICY: see bench/README.md, Threading.
 *
 * Usage: bench_linear [--threads N] [--reps R] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/gemm_small.h"
#include "cli_args.h"
#include "mid_model.h"
#include "nn/ops.h"
#include "base/rng.h"
#include "io/safetensors.h"

#define FLUSH_BYTES (96u << 20) /* three times the 32 MiB L3 of the reference machine */

struct shape {
    const char *what;
    int in_dim, out_dim;
};

static const struct shape SHAPES[] = {
    {"mlp up 1024->2816", 1024, 2816},
    {"mlp down 2816->1024", 2816, 1024},
    {"lm_head 1024->32000", 1024, 32000},
};
static const int ROWS[] = {1, 2, 4, 8, 16, 32, 64};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])
#define N_ROWS (int)(sizeof ROWS / sizeof ROWS[0])
#define MAX_N 64

enum which { OP_LINEAR, SGEMM, GEMM_SMALL, BF16, N_WHICH }; /* the table's column order */

/* Touches every line of the flush buffer so the weight is no longer cached. */
static void flush_caches(float *buf, size_t count) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i += 16) buf[i] += 1.0f;
}

static void call(enum which w, float *out, const float *in, const float *weight, const uint16_t *weight_bf16, int n,
                 const struct shape *s) {
    if (w == BF16) gemm_bf16_run(out, in, weight_bf16, NULL, n, s->in_dim, s->out_dim, 1);
    else if (w == OP_LINEAR) op_linear(out, in, weight, NULL, n, s->in_dim, s->out_dim);
    else if (w == GEMM_SMALL) gemm_small(out, in, weight, NULL, n, s->in_dim, s->out_dim);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, s->out_dim, s->in_dim, 1.0f, in, s->in_dim, weight,
                    s->in_dim, 0.0f, out, s->out_dim);
}

/* Best seconds of one cold-cache call for each of the variants, each
 * timed over its own run of reps (the steady state of a decode step, which
 * calls the same path layer after layer).  OpenBLAS's worker threads keep
 * spinning for a while after an sgemm returns and would take the cores from
 * the OpenMP team of the next variant, so every variant starts after a pause. */
static void time_calls(double best[N_WHICH], float *out, const float *in, const float *weight,
                       const uint16_t *weight_bf16, int n, const struct shape *s, float *flush, size_t flush_count,
                       int reps) {
    const struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    for (int w = 0; w < N_WHICH; w++) {
        nanosleep(&pause, NULL);
        call((enum which)w, out, in, weight, weight_bf16, n, s); /* warm-up: thread wake-up, page faults */
        best[w] = 1e30;
        for (int r = 0; r < reps; r++) {
            flush_caches(flush, flush_count);
            double t0 = bench_now_s();
            call((enum which)w, out, in, weight, weight_bf16, n, s);
            double t = bench_now_s() - t0;
            if (t < best[w]) best[w] = t;
        }
    }
}

int main(int argc, char **argv) {
    int threads = 0, reps = 21;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (bench_parse_int("bench_linear", argv[++i], "--threads", 1, 4096, &threads)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0) {
            if (bench_parse_int("bench_linear", argv[++i], "--reps", 1, 1000, &reps)) return 2;
        } else {
            fprintf(stderr, "usage: bench_linear [--threads N] [--reps R]\n");
            return 2;
        }
    }
    dsr_set_threads(threads);

    size_t max_w = 0, max_in = 0, max_out = 0;
    for (int s = 0; s < N_SHAPES; s++) {
        size_t w = (size_t)SHAPES[s].in_dim * SHAPES[s].out_dim;
        if (w > max_w) max_w = w;
        if ((size_t)SHAPES[s].in_dim > max_in) max_in = (size_t)SHAPES[s].in_dim;
        if ((size_t)SHAPES[s].out_dim > max_out) max_out = (size_t)SHAPES[s].out_dim;
    }
    size_t flush_count = FLUSH_BYTES / sizeof(float);
    float *weight = malloc(max_w * sizeof(float));
    float *in = malloc(MAX_N * max_in * sizeof(float));
    float *out = malloc(MAX_N * max_out * sizeof(float));
    float *flush = calloc(flush_count, sizeof(float));
    uint16_t *weight_bf16 = malloc(max_w * sizeof *weight_bf16);
    if (!weight || !in || !out || !flush || !weight_bf16) {
        fprintf(stderr, "bench_linear: out of memory\n");
        return 1;
    }
    struct dsr_rng rng;
    rng_seed(&rng, 7);
    for (size_t i = 0; i < max_w; i++) weight[i] = (float)(rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < max_w; i++) weight_bf16[i] = st_f32_to_bf16(weight[i]);
    for (size_t i = 0; i < MAX_N * max_in; i++) in[i] = (float)(rng_uniform(&rng) - 0.5);

    printf("threads %d, best of %d reps, cold weight; op_linear: sgemv for n = 1, gemm_small for n = 2..%d, "
           "sgemm above; gemm_small %s\n",
           dsr_get_threads(), reps, GEMM_SMALL_MAX_ROWS,
           gemm_small_simd_supported() ? "AVX2+FMA" : "portable (sgemm)");
    printf("%-22s %3s | %9s %7s %8s | %9s %7s %8s | %9s %7s %8s | %9s %7s %8s %6s\n", "shape", "n", "op_linear",
           "GB/s", "GFLOP/s", "sgemm", "GB/s", "GFLOP/s", "gemm_small", "GB/s", "GFLOP/s", "bf16", "GB/s", "GFLOP/s",
           "×f32");
    for (int s = 0; s < N_SHAPES; s++) {
        const struct shape *sh = &SHAPES[s];
        double bytes = (double)sh->in_dim * sh->out_dim * sizeof(float);
        for (int r = 0; r < N_ROWS; r++) {
            int n = ROWS[r];
            double flops = 2.0 * n * sh->in_dim * sh->out_dim;
            printf("%-22s %3d", sh->what, n);
            double best[N_WHICH];
            time_calls(best, out, in, weight, weight_bf16, n, sh, flush, flush_count, reps);
            for (int w = 0; w < N_WHICH; w++) {
                double b = w == BF16 ? bytes / 2 : bytes;
                printf(" | %7.3fms %7.1f %8.1f", best[w] * 1e3, b / best[w] * 1e-9, flops / best[w] * 1e-9);
            }
            printf(" %5.2fx\n", best[OP_LINEAR] / best[BF16]);
            fflush(stdout);
        }
    }
    free(weight);
    free(in);
    free(out);
    free(flush);
    free(weight_bf16);
    return 0;
}
