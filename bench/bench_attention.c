/* bench_attention: the trainer's causal attention core (core/nn/attention_train.h)
 * on one sequence, forward and backward, across row-block sizes.  The row
 * with block = n is the unblocked computation (full n×n products, every
 * masked tile included), the trainer's previous form.
 *
 * Defaults: the mid-size model's attention (16 heads, 16 KV heads, head_dim
 * 64) over n = 607 rows, one of bench_update --peer-batch's two sequences.
 * Each cell is the best of --reps calls after one warm-up round; the block
 * sizes take turns within each round.  GFLOP/s
 * count the multiply-adds executed (block products, masked tiles of the
 * diagonal blocks included): forward 2 GEMMs per block and head, backward 5
 * (probabilities recomputed, dV, dP, dQ, dK).  OMP_WAIT_POLICY: see bench/README.md, Threading.
 *
 * Usage: bench_attention [--threads N] [--reps R] [--len N] [--heads H] [--kv-heads G] [--head-dim D] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "mid_model.h"
#include "nn/ops.h"
#include "base/rng.h"
#include "nn/attention_train.h"

static const int BLOCKS[] = {32, 64, 96, 128, 192, 256, 384};
#define N_BLOCKS (int)(sizeof BLOCKS / sizeof BLOCKS[0])

/* Multiply-adds of one b×i1×hd product summed over the row blocks, ×2 FLOPs. */
static double block_gemm_flops(int n, int block, int hd) {
    double sum = 0;
    for (int i0 = 0; i0 < n; i0 += block) {
        int i1 = n - i0 > block ? i0 + block : n;
        sum += (double)(i1 - i0) * i1;
    }
    return 2.0 * sum * hd;
}

static float *random_floats(struct dsr_rng *r, size_t count) {
    float *p = malloc(count * sizeof(float));
    if (p)
        for (size_t i = 0; i < count; i++) p[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
    return p;
}

int main(int argc, char **argv) {
    int threads = 0, reps = 5, n = 607, heads = 16, kv_heads = 16, hd = 64;
    static const char *flags[] = {"--threads", "--reps", "--len", "--heads", "--kv-heads", "--head-dim"};
    int *vals[] = {&threads, &reps, &n, &heads, &kv_heads, &hd};
    static const int lo[] = {1, 1, 1, 1, 1, 1}, hi[] = {4096, 1000, 8192, 256, 256, 1024};
    for (int i = 1; i < argc; i++) {
        int f = 0;
        while (f < 6 && strcmp(argv[i], flags[f]) != 0) f++;
        if (f == 6 || i + 1 >= argc) {
            fprintf(stderr, "usage: bench_attention [--threads N] [--reps R] [--len N] [--heads H] [--kv-heads G] "
                            "[--head-dim D]\n");
            return 2;
        }
        if (bench_parse_int("bench_attention", argv[++i], flags[f], lo[f], hi[f], vals[f])) return 2;
    }
    if (heads % kv_heads) {
        fprintf(stderr, "bench_attention: --heads must be a multiple of --kv-heads\n");
        return 2;
    }
    dsr_set_threads(threads);

    size_t nq = (size_t)n * heads * hd, nkv = (size_t)n * kv_heads * hd;
    struct dsr_rng rng;
    rng_seed(&rng, 5);
    float *q = random_floats(&rng, nq), *k = random_floats(&rng, nkv), *v = random_floats(&rng, nkv);
    float *d_out = random_floats(&rng, nq), *out = malloc(nq * sizeof(float)), *dq = malloc(nq * sizeof(float));
    float *dk = calloc(nkv, sizeof(float)), *dv = calloc(nkv, sizeof(float));
    float *scratch = malloc(ta_scratch_floats(n, n) * sizeof(float)); /* the largest: one block of n rows */
    if (!q || !k || !v || !d_out || !out || !dq || !dk || !dv || !scratch) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }

    /* the block sizes below n, then n itself (the full products) */
    int blocks[N_BLOCKS + 1], n_blocks = 0;
    for (int bi = 0; bi < N_BLOCKS; bi++)
        if (BLOCKS[bi] < n) blocks[n_blocks++] = BLOCKS[bi];
    blocks[n_blocks++] = n;
    /* reps outermost, so a burst of load from other processes hits every
     * block size alike rather than one row of the table */
    double best_f[N_BLOCKS + 1], best_b[N_BLOCKS + 1];
    for (int r = 0; r <= reps; r++) /* r = 0: warm-up */
        for (int bi = 0; bi < n_blocks; bi++) {
            struct ta_dims d = {.n_heads = heads, .n_kv_heads = kv_heads, .head_dim = hd, .block_rows = blocks[bi]};
            double t0 = bench_now_s();
            ta_forward(&d, n, q, k, v, out, scratch);
            double t1 = bench_now_s();
            ta_backward(&d, n, q, k, v, d_out, dq, dk, dv, scratch);
            double t2 = bench_now_s();
            if (r == 0 || t1 - t0 < best_f[bi]) best_f[bi] = t1 - t0;
            if (r == 0 || t2 - t1 < best_b[bi]) best_b[bi] = t2 - t1;
        }

    printf("threads %d, n %d, heads %d/%d, head_dim %d, best of %d; trainer block %d\n", dsr_get_threads(), n, heads,
           kv_heads, hd, reps, TA_BLOCK_ROWS);
    printf("%7s | %9s %8s | %9s %8s | %9s %10s\n", "block", "fwd ms", "GFLOP/s", "bwd ms", "GFLOP/s", "total ms",
           "vs full");
    double full_total = best_f[n_blocks - 1] + best_b[n_blocks - 1];
    for (int bi = n_blocks - 1; bi >= 0; bi--) {
        int block = blocks[bi];
        double g = block_gemm_flops(n, block, hd) * heads, total = best_f[bi] + best_b[bi];
        char label[16];
        if (block == n) snprintf(label, sizeof label, "full");
        else snprintf(label, sizeof label, "%d", block);
        printf("%7s | %9.2f %8.1f | %9.2f %8.1f | %9.2f %9.2fx\n", label, best_f[bi] * 1e3, 2 * g / best_f[bi] * 1e-9,
               best_b[bi] * 1e3, 5 * g / best_b[bi] * 1e-9, total * 1e3, full_total / total);
    }
    free(q), free(k), free(v), free(d_out), free(out), free(dq), free(dk), free(dv), free(scratch);
    return 0;
}
