#include "nn/vec_math.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* glibc's libmvec AVX2 entry points (x86_64 vector ABI names); declared
 * AVX2 so that __m256 passes in a ymm register (clang insists). */
__attribute__((target("avx2"))) __m256 _ZGVdN8v_erff(__m256 x);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_expf(__m256 x);

__attribute__((target("avx2,fma"))) static __m256 gelu8(__m256 v) {
    __m256 e = _ZGVdN8v_erff(_mm256_mul_ps(v, _mm256_set1_ps((float)M_SQRT1_2)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

__attribute__((target("avx2,fma"))) static __m256 silu8(__m256 v) {
    __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* f over x[0, n): whole vectors, then the tail through one zero-padded
 * vector.  (f is called through a pointer: it calls into libmvec anyway.) */
__attribute__((target("avx2,fma"))) static void apply8(float *x, size_t n, __m256 (*f)(__m256)) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float pad[8] = {0};
        memcpy(pad, x + i, (n - i) * sizeof *pad);
        _mm256_storeu_ps(pad, f(_mm256_loadu_ps(pad)));
        memcpy(x + i, pad, (n - i) * sizeof *pad);
    }
}

static int have_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

void vec_gelu_erf(float *x, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) {
        apply8(x, n, gelu8);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void vec_silu(float *x, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) {
        apply8(x, n, silu8);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}
