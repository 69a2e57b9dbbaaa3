/* Threading of the linked OpenBLAS (core/nn/ops.h): the build the Makefile
 * links is OpenBLAS's OpenMP one, so GEMMs run on the libgomp team dsr's
 * loops use; a GEMM split over that team, and GEMMs called by each thread of
 * an OpenMP parallel region at once (OpenBLAS then runs them single-
 * threaded), agree with a double-precision reference; the kernel name
 * dsrd logs is the one an OPENBLAS_CORETYPE pin chose. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"
#include "nn/ops.h"

enum { M = 192, K = 160, N = 224 };

static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* C[M, N] = A[M, K] · B[K, N] in double */
static void gemm_ref(const float *a, const float *b, double *c) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)a[(size_t)i * K + k] * b[(size_t)k * N + j];
            c[(size_t)i * N + j] = s;
        }
}

static void sgemm(const float *a, const float *b, float *c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N);
}

static void test_openmp_build(struct th *t) {
    TH_CHECK(t, strcmp(dsr_blas_threading(), "OpenMP") == 0,
             "OpenBLAS threading is %s, want OpenMP (the Makefile links libopenblas-openmp-dev's build)",
             dsr_blas_threading());
}

/* the kernels dsrd logs are the ones OpenBLAS runs: an OPENBLAS_CORETYPE
 * pin names them (OpenBLAS's spelling may differ in case) */
static void test_kernels_named(struct th *t) {
    const char *core = dsr_blas_core(), *pin = getenv("OPENBLAS_CORETYPE");
    TH_CHECK(t, core[0] && strcmp(core, "unknown") != 0, "no kernel name: '%s'", core);
    if (pin && pin[0]) TH_CHECK(t, strcasecmp(core, pin) == 0, "kernels %s under OPENBLAS_CORETYPE=%s", core, pin);
}

static void test_gemm_results(struct th *t) {
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c = malloc(sizeof(float) * 2 * M * N), *want = malloc(sizeof(float) * M * N);
    double *ref = malloc(sizeof(double) * M * N);
    if (!TH_CHECK(t, a && b && c && want && ref, "out of memory")) goto out;
    fill(a, (size_t)M * K, 1);
    fill(b, (size_t)K * N, 2);
    gemm_ref(a, b, ref);
    for (size_t i = 0; i < (size_t)M * N; i++) want[i] = (float)ref[i];
    dsr_set_threads(2);
    sgemm(a, b, c);
    TH_CLOSE(t, "sgemm over the team", c, want, (size_t)M * N, 1e-5);
    int threads = 0;
    memset(c, 0, sizeof(float) * 2 * M * N);
#pragma omp parallel num_threads(2)
    {
#pragma omp atomic
        threads++;
        sgemm(a, b, c + (size_t)(omp_get_thread_num() & 1) * M * N);
    }
    TH_CHECK(t, threads == 2, "the parallel region ran %d threads, want 2", threads);
    TH_CLOSE(t, "sgemm in thread 0 of a region", c, want, (size_t)M * N, 1e-5);
    TH_CLOSE(t, "sgemm in thread 1 of a region", c + (size_t)M * N, want, (size_t)M * N, 1e-5);
out:
    free(a);
    free(b);
    free(c);
    free(want);
    free(ref);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "openmp_build", test_openmp_build);
    th_run(&t, "kernels_named", test_kernels_named);
    th_run(&t, "gemm_results", test_gemm_results);
    return th_finish(&t, "test_threads");
}
