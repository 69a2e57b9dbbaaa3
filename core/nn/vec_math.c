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

/* The sigmoid of 8 lanes: 1 / (1 + exp(−v)). */
__attribute__((target("avx2,fma"))) static __m256 sigmoid8(__m256 v) {
    __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* Loads up to 8 floats (the tail zero-padded) and stores them back. */
__attribute__((target("avx2"))) static __m256 load_n(const float *p, size_t n) {
    if (n >= 8) return _mm256_loadu_ps(p);
    float pad[8] = {0};
    memcpy(pad, p, n * sizeof *pad);
    return _mm256_loadu_ps(pad);
}
__attribute__((target("avx2"))) static void store_n(float *p, __m256 v, size_t n) {
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float pad[8];
    _mm256_storeu_ps(pad, v);
    memcpy(p, pad, n * sizeof *pad);
}

__attribute__((target("avx2,fma"))) static void exp_shifted8(float *out, const float *in, float shift, size_t n) {
    const __m256 sh = _mm256_set1_ps(shift);
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        store_n(out + i, _ZGVdN8v_expf(_mm256_sub_ps(load_n(in + i, k), sh)), k);
    }
}

__attribute__((target("avx2,fma"))) static void swiglu8(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        __m256 g = load_n(gate + i, k);
        store_n(out + i, _mm256_mul_ps(silu8(g), load_n(up + i, k)), k);
    }
}

__attribute__((target("avx2,fma"))) static void swiglu_backward8(const float *gate, const float *up,
                                                                 const float *d_act, float *dgate, float *dup,
                                                                 size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        __m256 z = load_n(gate + i, k), u = load_n(up + i, k), d = load_n(d_act + i, k);
        __m256 s = sigmoid8(z), ds = _mm256_mul_ps(d, s);
        store_n(dup + i, _mm256_mul_ps(ds, z), k);
        /* 1 + z·(1 − s) */
        __m256 f = _mm256_fmadd_ps(z, _mm256_sub_ps(one, s), one);
        store_n(dgate + i, _mm256_mul_ps(_mm256_mul_ps(ds, u), f), k);
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

void vec_exp_shifted(float *out, const float *in, float shift, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) {
        exp_shifted8(out, in, shift, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) out[i] = expf(in[i] - shift);
}

void vec_swiglu(float *out, const float *gate, const float *up, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) {
        swiglu8(out, gate, up, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void vec_swiglu_backward(const float *gate, const float *up, const float *d_act, float *dgate, float *dup, size_t n) {
#if defined(__x86_64__)
    if (have_avx2()) {
        swiglu_backward8(gate, up, d_act, dgate, dup, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        float z = gate[i], s = 1.0f / (1.0f + expf(-z)), d = d_act[i];
        dup[i] = d * z * s;
        dgate[i] = d * up[i] * s * (1.0f + z * (1.0f - s));
    }
}
