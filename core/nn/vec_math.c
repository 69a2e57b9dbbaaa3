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

/* f over x[0, n) in place, 8 at a time, the tail zero-padded.  (f is called
 * through a pointer: it calls into libmvec anyway.) */
__attribute__((target("avx2,fma"))) static void apply8(float *x, size_t n, __m256 (*f)(__m256)) {
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        store_n(x + i, f(load_n(x + i, k)), k);
    }
}

/* The sigmoid of 8 lanes: 1 / (1 + exp(−v)). */
__attribute__((target("avx2,fma"))) static __m256 sigmoid8(__m256 v) {
    __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

__attribute__((target("avx2,fma"))) static void exp_shifted8(float *out, const float *in, float shift, size_t n) {
    const __m256 sh = _mm256_set1_ps(shift);
    for (size_t i = 0; i < n; i += 8) {
        size_t k = n - i < 8 ? n - i : 8;
        store_n(out + i, _ZGVdN8v_expf(_mm256_sub_ps(load_n(in + i, k), sh)), k);
    }
}

/* vec_softmax's AVX2 body: the portable loop's operations exactly (the four
 * double partial sums are one vector's lanes). */
__attribute__((target("avx2,fma"))) static void softmax8(float *x, size_t n) {
    __m256 m8 = _mm256_set1_ps(x[0]);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) m8 = _mm256_max_ps(_mm256_loadu_ps(x + j), m8);
    float lanes[8];
    _mm256_storeu_ps(lanes, m8);
    float mx = lanes[0];
    for (int l = 1; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    exp_shifted8(x, x, mx, n);
    __m256d s4 = _mm256_setzero_pd();
    for (j = 0; j + 4 <= n; j += 4) s4 = _mm256_add_pd(s4, _mm256_cvtps_pd(_mm_loadu_ps(x + j)));
    double s[4];
    _mm256_storeu_pd(s, s4);
    for (; j < n; j++) s[0] += x[j];
    __m256 inv = _mm256_set1_ps((float)(1.0 / ((s[0] + s[1]) + (s[2] + s[3]))));
    for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_mul_ps(_mm256_loadu_ps(x + j), inv));
    for (; j < n; j++) x[j] *= _mm256_cvtss_f32(inv);
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

void vec_softmax(float *x, size_t n) {
    if (n == 0) return;
#if defined(__x86_64__)
    if (have_avx2()) {
        softmax8(x, n);
        return;
    }
#endif
    float m[4] = {x[0], x[0], x[0], x[0]};
    size_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int l = 0; l < 4; l++) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
    for (; j < n; j++) m[0] = x[j] > m[0] ? x[j] : m[0];
    float mx = fmaxf(fmaxf(m[0], m[1]), fmaxf(m[2], m[3]));
    vec_exp_shifted(x, x, mx, n);
    double s[4] = {0, 0, 0, 0};
    for (j = 0; j + 4 <= n; j += 4)
        for (int l = 0; l < 4; l++) s[l] += x[j + l];
    for (; j < n; j++) s[0] += x[j];
    float inv = (float)(1.0 / ((s[0] + s[1]) + (s[2] + s[3])));
    for (j = 0; j < n; j++) x[j] *= inv;
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

/* Partial sums per lane (8 lanes: two 4-double vectors on AVX2, a mul then
 * an add, so both paths round alike), then the tail, then the lanes in
 * order.  f(x) is x, x² or (x − mean)². */
enum { SUM_LANES = 8 };
enum sum_kind { SUM_PLAIN, SUM_SQ, SUM_SQ_DEV };

static double term(float x, enum sum_kind kind, double mean) {
    double d = kind == SUM_SQ_DEV ? x - mean : (double)x;
    return kind == SUM_PLAIN ? d : d * d;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static double sum_avx2(const float *x, size_t n, enum sum_kind kind, double mean) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd(), m = _mm256_set1_pd(mean);
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        if (kind == SUM_SQ_DEV) {
            a = _mm256_sub_pd(a, m);
            b = _mm256_sub_pd(b, m);
        }
        if (kind != SUM_PLAIN) {
            a = _mm256_mul_pd(a, a);
            b = _mm256_mul_pd(b, b);
        }
        lo = _mm256_add_pd(lo, a);
        hi = _mm256_add_pd(hi, b);
    }
    double part[SUM_LANES], s = 0.0;
    _mm256_storeu_pd(part, lo);
    _mm256_storeu_pd(part + 4, hi);
    for (; i < n; i++) s += term(x[i], kind, mean);
    for (int l = 0; l < SUM_LANES; l++) s += part[l];
    return s;
}
#endif

static double sum_of(const float *x, size_t n, enum sum_kind kind, double mean) {
#if defined(__x86_64__)
    if (have_avx2()) return sum_avx2(x, n, kind, mean);
#endif
    double part[SUM_LANES] = {0}, s = 0.0;
    size_t i = 0;
    for (; i + SUM_LANES <= n; i += SUM_LANES)
        for (int l = 0; l < SUM_LANES; l++) part[l] += term(x[i + l], kind, mean);
    for (; i < n; i++) s += term(x[i], kind, mean);
    for (int l = 0; l < SUM_LANES; l++) s += part[l];
    return s;
}

double vec_sum(const float *x, size_t n) { return sum_of(x, n, SUM_PLAIN, 0.0); }
double vec_sum_sq(const float *x, size_t n) { return sum_of(x, n, SUM_SQ, 0.0); }
double vec_sum_sq_dev(const float *x, size_t n, double mean) { return sum_of(x, n, SUM_SQ_DEV, mean); }
