/* bench_attention_decode: one decode step's attention (core/nn/attention_decode.h)
 * for a rollout group: `rows` members reading one shared prefix of
 * `prefix` positions plus `own` positions each, over every layer, with the
 * x86 vector paths (DECODE_ISA_AUTO) and the portable loops
 * (DECODE_ISA_PORTABLE), which give the same bits.
 *
 * Defaults: a caption group of 8 on the mid-size model (12 layers, 16 heads
 * of 64) after a 610-position image + question prefill, 48 tokens in (the
 * middle of bench_decode's 96-token captions).  The cache is laid out as the
 * sampler's (kv_cache_init_shared).  Bytes per step: the prefix's keys and
 * values once per layer and head, each row's own positions; FLOPs: Q·Kᵀ and
 * P·V over every visible position.  Each figure is the best of --reps steps,
 * the two paths taking turns.
 *
 * Usage: bench_attention_decode [--threads N] [--reps R] [--rows G] [--prefix P] [--own N] [--layers L]
 *                               [--heads H] [--head-dim D] [--kv-dtype f32|bf16] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "mid_model.h"
#include "base/rng.h"
#include "nn/attention_decode.h"
#include "nn/kv_cache.h"
#include "nn/ops.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_attention_decode [--threads N] [--reps R] [--rows G] [--prefix P] [--own N] "
                    "[--layers L] [--heads H] [--head-dim D] [--kv-dtype f32|bf16]\n");
}

int main(int argc, char **argv) {
    int threads = 0, reps = 20, rows = 8, prefix = 610, own = 48, layers = 12, heads = 16, hd = 64;
    enum kv_dtype dtype = KV_F32;
    static const char *flags[] = {"--threads", "--reps",   "--rows",  "--prefix",
                                  "--own",     "--layers", "--heads", "--head-dim"};
    int *vals[] = {&threads, &reps, &rows, &prefix, &own, &layers, &heads, &hd};
    static const int lo[] = {1, 1, 1, 1, 0, 1, 1, 1}, hi[] = {4096, 10000, 64, 65536, 65536, 256, 256, 1024};
    enum { N_FLAGS = 8 };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kv-dtype") == 0 && i + 1 < argc) {
            const char *d = argv[++i];
            if (strcmp(d, "f32") != 0 && strcmp(d, "bf16") != 0) {
                fprintf(stderr, "bench_attention_decode: --kv-dtype: '%s' is not f32 or bf16\n", d);
                return 2;
            }
            dtype = strcmp(d, "bf16") == 0 ? KV_BF16 : KV_F32;
            continue;
        }
        int f = 0;
        while (f < N_FLAGS && strcmp(argv[i], flags[f]) != 0) f++;
        if (f == N_FLAGS || i + 1 >= argc) {
            usage();
            return 2;
        }
        if (bench_parse_int("bench_attention_decode", argv[++i], flags[f], lo[f], hi[f], vals[f])) return 2;
    }
    dsr_set_threads(threads);

    /* slot 0 holds the prefill and is a member too; every member has `own`
     * positions and its new row's */
    struct kv_cache c;
    struct dsr_err err = {{0}};
    int max_len = prefix + own + 1, kv_dim = heads * hd;
    if (kv_cache_init_shared(&c, rows, 1, prefix, layers, max_len, heads, hd, dtype, &err)) {
        fprintf(stderr, "bench_attention_decode: %s\n", err.msg);
        return 1;
    }
    struct dsr_rng rng;
    rng_seed(&rng, 5);
    size_t n_kv = (size_t)max_len * kv_dim;
    float *k = malloc(n_kv * sizeof *k), *v = malloc(n_kv * sizeof *v);
    float *q = malloc((size_t)rows * kv_dim * sizeof *q), *out = malloc((size_t)rows * kv_dim * sizeof *out);
    struct lm_segment *segs = malloc((size_t)rows * sizeof *segs);
    int *row0 = malloc((size_t)rows * sizeof *row0);
    unsigned char *is_short = malloc((size_t)rows);
    if (!k || !v || !q || !out || !segs || !row0 || !is_short) {
        fprintf(stderr, "bench_attention_decode: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n_kv; i++) {
        k[i] = (float)(rng_uniform(&rng) * 2 - 1);
        v[i] = (float)(rng_uniform(&rng) * 2 - 1);
    }
    for (size_t i = 0; i < (size_t)rows * kv_dim; i++) q[i] = (float)(rng_uniform(&rng) * 2 - 1);
    for (int l = 0; l < layers; l++) kv_cache_write(&c, 0, l, 0, k, v, prefix);
    c.len[0] = prefix;
    for (int s = 1; s < rows; s++)
        if (kv_cache_share_prefix(&c, s, 0, &err)) {
            fprintf(stderr, "bench_attention_decode: %s\n", err.msg);
            return 1;
        }
    for (int s = 0; s < rows; s++) {
        for (int l = 0; l < layers; l++) kv_cache_write(&c, s, l, prefix, k, v, own + 1);
        c.len[s] = prefix + own;
        segs[s] = (struct lm_segment){.slot = s, .n = 1};
        row0[s] = s;
        is_short[s] = 1;
    }

    double best[2] = {1e30, 1e30};
    for (int r = 0; r <= reps; r++) /* r = 0: warm-up */
        for (int path = 0; path < 2; path++) {
            double t0 = bench_now_s();
            for (int l = 0; l < layers; l++)
                if (attention_decode(q, &c, l, segs, row0, is_short, rows, heads, heads, hd,
                                     path == 0 ? DECODE_ISA_AUTO : DECODE_ISA_PORTABLE, out, &err)) {
                    fprintf(stderr, "bench_attention_decode: %s\n", err.msg);
                    return 1;
                }
            double dt = bench_now_s() - t0;
            if (r > 0 && dt < best[path]) best[path] = dt;
        }

    size_t elem = dtype == KV_BF16 ? 2 : 4;
    double bytes = 2.0 * layers * kv_dim * elem * ((double)prefix + (double)rows * (own + 1));
    double flops = 2.0 * 2.0 * layers * kv_dim * (double)rows * (prefix + own + 1);
    printf("threads %d, %d rows, prefix %d + own %d, %d layers, %d heads of %d, %s KV: %.1f MB, %.2f GFLOP a step\n",
           dsr_get_threads(), rows, prefix, own, layers, heads, hd, kv_dtype_name(dtype), bytes * 1e-6, flops * 1e-9);
    static const char *names[] = {"vector paths", "portable"};
    for (int p = 0; p < 2; p++)
        printf("%-13s %7.3f ms  %6.1f GB/s  %6.1f GFLOP/s\n", names[p], best[p] * 1e3, bytes / best[p] * 1e-9,
               flops / best[p] * 1e-9);
    printf("portable / vector paths: %.2fx\n", best[1] / best[0]);
    free(k), free(v), free(q), free(out), free(segs), free(row0), free(is_short);
    kv_cache_free(&c);
    return 0;
}
