/* bench_machine: what this machine can do, as a yardstick for the model's
 * own timings.
 *
 *   sgemm   GFLOP/s of cblas_sgemm (row-major, B transposed as op_linear
 *           calls it) at square shapes and at the model's layer shapes;
 *   memory  GB/s of a STREAM-like copy (c = a) and triad (a = b + s·c), and
 *           of a read-only sum (what a decode step does to the weights),
 *           over arrays far larger than any cache;
 *   fma     GFLOP/s of independent FMA chains in registers on every thread,
 *           256-bit and (on AVX-512 CPUs) 512-bit: the cores' arithmetic
 *           ceiling, against which the sgemm peak and the kernels are read
 *           (x86-64 only).
 *
 * Usage: bench_machine [--threads N] [--mib M] [--json FILE]
 *   --threads  threads for OpenBLAS and OpenMP (default: all cores)
 *   --mib      size of each of the three stream arrays in MiB (default 256)
 *   --json     also write the numbers to FILE as JSON
 *
 * Each measurement keeps the best of repeated runs (after one warm-up), the
 * usual convention for peak numbers: the best run is the one least disturbed
 * by the rest of the system. */
#include <cblas.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_args.h"
#include "nn/ops.h"
#include "base/rng.h"

#define MIN_SECONDS 0.5 /* each measurement repeats until it has run this long */
#define MAX_MIB 65536

struct gemm_shape {
    const char *what;
    int m, n, k; /* C[m, n] = A[m, k] · B[n, k]ᵀ */
};

static const struct gemm_shape SHAPES[] = {
    {"square 1024", 1024, 1024, 1024},
    {"square 2048", 2048, 2048, 2048},
    {"LM attn proj 600x2048x2048", 600, 2048, 2048},
    {"LM mlp up 600x5632x2048", 600, 5632, 2048},
    {"LM mlp down 600x2048x5632", 600, 2048, 5632},
    {"ViT mlp fc1 576x4096x1024", 576, 4096, 1024},
    {"decode 16x2048x2048", 16, 2048, 2048},
    /* the mid-size benchmark model (bench/mid_model.h) */
    {"mid attn proj 607x1024x1024", 607, 1024, 1024},
    {"mid mlp up 607x2816x1024", 607, 2816, 1024},
    {"mid mlp down 607x1024x2816", 607, 1024, 2816},
    {"mid lm_head chunk 64x32000x1024", 64, 32000, 1024},
    {"mid decode 32x2816x1024", 32, 2816, 1024},
};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill_random(float *x, size_t n, uint64_t seed) {
    struct dsr_rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_uniform(&r) - 0.5);
}

/* Best GFLOP/s of C = A·Bᵀ at one shape, or a negative value when out of memory. */
static double bench_gemm(const struct gemm_shape *s) {
    size_t na = (size_t)s->m * s->k, nb = (size_t)s->n * s->k, nc = (size_t)s->m * s->n;
    float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float)), *c = malloc(nc * sizeof(float));
    double best = -1;
    if (a && b && c) {
        fill_random(a, na, 1);
        fill_random(b, nb, 2);
        double flops = 2.0 * s->m * s->n * s->k, spent = 0, fastest = 1e30;
        for (int rep = 0; rep == 0 || spent < MIN_SECONDS; rep++) {
            double t0 = now_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->m, s->n, s->k, 1.0f, a, s->k, b, s->k, 0.0f, c,
                        s->n);
            double dt = now_s() - t0;
            if (rep == 0) continue; /* warm-up: thread start, page faults */
            spent += dt;
            if (dt < fastest) fastest = dt;
        }
        best = flops / fastest * 1e-9;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

struct stream_result {
    double copy_gbs, triad_gbs, read_gbs;
};

/* Σ x[i] with 16 independent partial sums, so the loop vectorises without
 * reassociation flags and runs at load speed rather than add latency. */
static float sum_floats(const float *x, size_t n) {
    float part[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) part[j] += x[i + j];
    float s = 0;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 16; j++) s += part[j];
    return s;
}

/* STREAM-like copy and triad over three arrays of n floats each. */
static int bench_stream(size_t n, struct stream_result *out) {
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return -1;
    }
    /* First touch in parallel so pages land near the threads that use them. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 1.0f;
        b[i] = 2.0f;
        c[i] = 0.0f;
    }
    const float scalar = 3.0f;
    double best_copy = 1e30, best_triad = 1e30, best_read = 1e30, spent = 0;
    float total = 0;
    for (int rep = 0; rep < 3 || spent < 2 * MIN_SECONDS; rep++) {
        double t0 = now_s();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) c[i] = a[i];
        double t1 = now_s();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + scalar * c[i];
        double t2 = now_s();
        int nt = omp_get_max_threads();
        size_t chunk = (n + (size_t)nt - 1) / (size_t)nt;
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (int t = 0; t < nt; t++) {
            size_t lo = (size_t)t * chunk, hi = lo + chunk < n ? lo + chunk : n;
            if (lo < hi) total += sum_floats(b + lo, hi - lo);
        }
        double t3 = now_s();
        if (rep == 0) continue;
        spent += t3 - t0;
        if (t1 - t0 < best_copy) best_copy = t1 - t0;
        if (t2 - t1 < best_triad) best_triad = t2 - t1;
        if (t3 - t2 < best_read) best_read = t3 - t2;
    }
    /* Read the result so the compiler cannot drop the loops. */
    volatile float sink = a[n / 2] + total;
    (void)sink;
    double bytes = (double)n * sizeof(float);
    out->copy_gbs = 2 * bytes / best_copy * 1e-9;   /* read a, write c */
    out->triad_gbs = 3 * bytes / best_triad * 1e-9; /* read b, c, write a */
    out->read_gbs = bytes / best_read * 1e-9;        /* read b */
    free(a);
    free(b);
    free(c);
    return 0;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* FMA chains per thread: more than FMA latency × FMA ports (4 × 2 on
 * current x86 cores), so the loop runs at the FMA issue rate. */
#define FMA_CHAINS 12
#define FMA_ITERS 20000000L

/* Seconds for FMA_ITERS × FMA_CHAINS 256-bit FMAs; *sink keeps the result. */
__attribute__((target("avx2,fma"))) static double fma_seconds_256(float *sink) {
    __m256 a[FMA_CHAINS], x = _mm256_set1_ps(1.0001f), y = _mm256_set1_ps(0.9999f);
    for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    double t0 = now_s();
    for (long k = 0; k < FMA_ITERS; k++)
#pragma GCC unroll 12
        for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    double dt = now_s() - t0;
    for (int i = 1; i < FMA_CHAINS; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    *sink = _mm256_cvtss_f32(a[0]);
    return dt;
}

__attribute__((target("avx512f"))) static double fma_seconds_512(float *sink) {
    __m512 a[FMA_CHAINS], x = _mm512_set1_ps(1.0001f), y = _mm512_set1_ps(0.9999f);
    for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    double t0 = now_s();
    for (long k = 0; k < FMA_ITERS; k++)
#pragma GCC unroll 12
        for (int i = 0; i < FMA_CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    double dt = now_s() - t0;
    for (int i = 1; i < FMA_CHAINS; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    *sink = _mm512_reduce_add_ps(a[0]);
    return dt;
}

/* GFLOP/s of all threads running FMA chains of `bits` (256 or 512) at
 * once: the best of 3 runs, each thread's FLOPs over the slowest thread's
 * time.  Negative when this CPU lacks the instructions. */
static double bench_fma(int bits) {
    if (bits == 512 ? !__builtin_cpu_supports("avx512f")
                    : !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
        return -1;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double slowest = 0;
        float sink = 0;
        int nt = 1;
#pragma omp parallel reduction(max : slowest) reduction(+ : sink)
        {
            float s = 0;
#pragma omp single
            nt = omp_get_num_threads();
            double dt = bits == 512 ? fma_seconds_512(&s) : fma_seconds_256(&s);
            slowest = dt;
            sink = s;
        }
        volatile float keep = sink;
        (void)keep;
        double g = (double)nt * FMA_ITERS * FMA_CHAINS * (bits / 32) * 2 / slowest * 1e-9;
        if (g > best) best = g;
    }
    return best;
}
#else
static double bench_fma(int bits) {
    (void)bits;
    return -1;
}
#endif

static void usage(void) { fprintf(stderr, "usage: bench_machine [--threads N] [--mib M] [--json FILE]\n"); }

int main(int argc, char **argv) {
    long threads = 0, mib = 256;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            if (bench_parse_long("bench_machine", argv[++i], "--threads", 1, 4096, &threads)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0) {
            if (bench_parse_long("bench_machine", argv[++i], "--mib", 1, MAX_MIB, &mib)) return 2;
        } else if (i + 1 < argc && strcmp(argv[i], "--json") == 0) {
            json_path = argv[++i];
        } else {
            usage();
            return 2;
        }
    }
    dsr_set_threads((int)threads);
    int used = dsr_get_threads();
    printf("bench_machine: %d threads (%d cores online), OpenBLAS %s kernels, stream arrays %ld MiB each\n\n", used,
           omp_get_num_procs(), dsr_blas_core(), mib);

    json_t *root = json_object(), *gemms = json_array();
    json_object_set_new(root, "threads", json_integer(used));
    json_object_set_new(root, "blas_kernels", json_string(dsr_blas_core()));
    json_object_set_new(root, "cores", json_integer(omp_get_num_procs()));

    printf("%-30s %6s %6s %6s %10s\n", "sgemm C = A·Bᵀ", "M", "N", "K", "GFLOP/s");
    for (size_t i = 0; i < N_SHAPES; i++) {
        const struct gemm_shape *s = &SHAPES[i];
        double g = bench_gemm(s);
        if (g < 0) {
            fprintf(stderr, "bench_machine: out of memory for %s\n", s->what);
            continue;
        }
        printf("%-30s %6d %6d %6d %10.1f\n", s->what, s->m, s->n, s->k, g);
        json_t *o = json_object();
        json_object_set_new(o, "what", json_string(s->what));
        json_object_set_new(o, "m", json_integer(s->m));
        json_object_set_new(o, "n", json_integer(s->n));
        json_object_set_new(o, "k", json_integer(s->k));
        json_object_set_new(o, "gflops", json_real(g));
        json_array_append_new(gemms, o);
    }
    json_object_set_new(root, "sgemm", gemms);

    struct stream_result st;
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(float);
    int rc = 0;
    if (bench_stream(n, &st) == 0) {
        printf("\n%-30s %10s\n%-30s %10.1f\n%-30s %10.1f\n%-30s %10.1f\n", "memory", "GB/s", "copy  c = a",
               st.copy_gbs, "triad a = b + s*c", st.triad_gbs, "read  sum(b)", st.read_gbs);
        json_t *m = json_object();
        json_object_set_new(m, "array_mib", json_integer(mib));
        json_object_set_new(m, "copy_gbs", json_real(st.copy_gbs));
        json_object_set_new(m, "triad_gbs", json_real(st.triad_gbs));
        json_object_set_new(m, "read_gbs", json_real(st.read_gbs));
        json_object_set_new(root, "memory", m);
    } else {
        fprintf(stderr, "bench_machine: out of memory for three %ld MiB arrays\n", mib);
        rc = 1;
    }

    double fma256 = bench_fma(256), fma512 = bench_fma(512);
    if (fma256 > 0) {
        printf("\n%-30s %10s\n%-30s %10.1f\n", "fma (registers, all threads)", "GFLOP/s", "256-bit", fma256);
        json_object_set_new(root, "fma256_gflops", json_real(fma256));
    }
    if (fma512 > 0) {
        printf("%-30s %10.1f\n", "512-bit", fma512);
        json_object_set_new(root, "fma512_gflops", json_real(fma512));
    }

    if (json_path && json_dump_file(root, json_path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "bench_machine: cannot write %s\n", json_path);
        rc = 1;
    }
    json_decref(root);
    return rc;
}
