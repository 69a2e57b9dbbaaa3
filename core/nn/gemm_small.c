#include "nn/gemm_small.h"

#include <cblas.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "base/bf16.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Below this many weight elements the kernel runs on the calling thread:
 * waking the OpenMP team costs more than the work (a 256 KiB weight). */
#define GEMM_SMALL_PARALLEL_MIN_WEIGHTS (64 * 1024)

/* Output rows (weight rows) and input rows per register block: 4 × 3
 * accumulators plus the 4 weight vectors fill the 16 AVX2 registers; the input
 * vectors come in as FMA memory operands.  AVX-512 CPUs have 32 ymm
 * registers: 4 × 6 accumulators, the 4 weight vectors and an input vector,
 * so each weight block is re-read half as often and each FMA needs fewer
 * loads (the vectors stay 256-bit: the same lanes, the same results). */
#define BLOCK_OUT 4

/* Output rows a thread takes at a time in group_simd (rounded up to whole
 * blocks). */
#define CHUNK_ROWS 128
#define BLOCK_IN 3
#define BLOCK_IN_WIDE 6

/* Portable path: bias broadcast, then sgemm accumulating on top of it. */
static void linear_sgemm(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim,
                         int out_dim) {
    if (bias)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out_dim; o++) out[(size_t)i * out_dim + o] = bias[o];
    int ld = in_dim > 0 ? in_dim : 1; /* BLAS rejects a zero leading dimension */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_dim, in_dim, 1.0f, in, ld, weight, ld,
                bias ? 1.0f : 0.0f, out, out_dim);
}

#if defined(__x86_64__)

int gemm_small_simd_supported(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

/* The wide kernels' instruction sets (AVX-512 F, DQ and VL). */
static int zmm_supported(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}

/* Sum of the 8 lanes in the order documented in gemm_small.h. */
__attribute__((target("avx2,fma"), always_inline)) static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* j + (j+4) */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                      /* j + (j+2) */
    s = _mm_add_ss(s, _mm_movehdup_ps(s));                                       /* 0 + 1 */
    return _mm_cvtss_f32(s);
}

/* out[c * out_dim + r] = x[c] · w[r] (+ bias[r]) for r < R weight rows and
 * c < C input rows (x[c] at x + c · ldx), each row k elements long.  R and C
 * are compile-time constants at every call site, so the accumulator arrays
 * live in registers.  With `prefetch`, step j (k index j) also prefetches the lines at
 * prefetch + j · pf_rate / 65536 elements and 64 bytes further into L2. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
dot_block(float *out, int out_dim, const float *w, const float *x, size_t ldx, int k, const float *bias,
          const float *prefetch, size_t pf_rate, int R, int C) {
    __m256 acc[BLOCK_OUT][BLOCK_IN_WIDE];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    int k8 = k & ~7;
    for (int j = 0; j < k8; j += 8) {
        if (prefetch) {
            const char *p = (const char *)(prefetch + (((size_t)j * pf_rate) >> 16));
            _mm_prefetch(p, _MM_HINT_T1);
            _mm_prefetch(p + 64, _MM_HINT_T1);
        }
        __m256 wv[BLOCK_OUT];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) wv[r] = _mm256_loadu_ps(w + (size_t)r * k + j);
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)c * ldx + j);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) {
            const float *xc = x + (size_t)c * ldx;
            float s = hsum8(acc[r][c]);
            for (int j = k8; j < k; j++) s += w[(size_t)r * k + j] * xc[j];
            if (bias) s += bias[r];
            out[(size_t)c * out_dim + r] = s;
        }
}

/* dot_block with a run-time input count c ≤ C_max (both compile-time
 * constants after inlining into the kernels below). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
dot_block_cols(float *out, int out_dim, const float *w, const float *x, size_t ldx, int k, const float *bias,
               const float *prefetch, size_t pf_rate, int R, int cols) {
    switch (cols) {
    case 6: dot_block(out, out_dim, w, x, ldx, k, bias, prefetch, pf_rate, R, 6); break;
    case 5: dot_block(out, out_dim, w, x, ldx, k, bias, prefetch, pf_rate, R, 5); break;
    case 4: dot_block(out, out_dim, w, x, ldx, k, bias, prefetch, pf_rate, R, 4); break;
    case 3: dot_block(out, out_dim, w, x, ldx, k, bias, prefetch, pf_rate, R, 3); break;
    case 2: dot_block(out, out_dim, w, x, ldx, k, bias, prefetch, pf_rate, R, 2); break;
    default: dot_block(out, out_dim, w, x, ldx, k, bias, prefetch, pf_rate, R, 1); break;
    }
}

/* One block of rows ≤ BLOCK_OUT weight rows against all n inputs, block_in
 * at a time: the weight block is read from memory by the first group and
 * from cache by the rest.  out, w and bias point at the block's first row.
 *
 * Meanwhile the next block (BLOCK_OUT · in_dim contiguous floats) is
 * prefetched into L2, spread evenly over all the groups: group g covers the
 * g-th of `groups` equal segments at pf_rate (16.16 fixed point) floats per k.
 * Prefetching it all during the first group, as an earlier version did, left
 * memory idle while the other groups computed (bench/README.md). */
__attribute__((target("avx2,fma"), always_inline)) static inline void
weight_block_body(float *out, const float *in, size_t ldx, const float *w, const float *bias, int n, int in_dim,
                  int out_dim, int rows, int next_rows, int block_in) {
    int groups = (n + block_in - 1) / block_in;
    size_t seg = (size_t)BLOCK_OUT * in_dim / groups;   /* elements */
    size_t pf_rate = ((size_t)BLOCK_OUT << 16) / groups; /* seg / in_dim, 16.16 */
    for (int i = 0, g = 0; i < n; i += block_in, g++) {
        int cols = n - i < block_in ? n - i : block_in;
        float *o = out + (size_t)i * out_dim;
        const float *x = in + (size_t)i * ldx;
        const float *pf = next_rows == BLOCK_OUT ? w + (size_t)BLOCK_OUT * in_dim + g * seg : NULL;
        if (rows == BLOCK_OUT) {
            dot_block_cols(o, out_dim, w, x, ldx, in_dim, bias, pf, pf_rate, BLOCK_OUT, cols);
        } else {
            for (int r = 0; r < rows; r++)
                dot_block_cols(o + r, out_dim, w + (size_t)r * in_dim, x, ldx, in_dim, bias ? bias + r : NULL, NULL,
                               0, 1, cols);
        }
    }
}

__attribute__((target("avx2,fma"), noinline)) static void weight_block(float *out, const float *in, size_t ldx,
                                                                        const float *w, const float *bias, int n,
                                                                        int in_dim, int out_dim, int rows,
                                                                        int next_rows) {
    weight_block_body(out, in, ldx, w, bias, n, in_dim, out_dim, rows, next_rows, BLOCK_IN);
}

/* The AVX-512 variant: 4 × 6 ymm accumulators.  A 512-bit float32 kernel
 * built like the BF16 one (row pairs against broadcast inputs, 4 × 8) ran
 * caption decode 7-11% slower with float32 weights and gained nothing on
 * images (bench/README.md), so float32 keeps this one. */
__attribute__((target("avx2,fma,avx512f,avx512vl"), noinline)) static void
weight_block_wide(float *out, const float *in, size_t ldx, const float *w, const float *bias, int n, int in_dim,
                  int out_dim, int rows, int next_rows) {
    weight_block_body(out, in, ldx, w, bias, n, in_dim, out_dim, rows, next_rows, BLOCK_IN_WIDE);
}

/* Input rows are re-read from L1 for every weight block, next to the
 * block's weight rows.  Rows whose byte stride is a multiple of 4 KiB (1024
 * floats: Janus-sized hidden states) fall into the same L1 set and evict
 * each other (6 inputs + 4 weight rows > 8 ways), so the kernels read a copy
 * whose rows are 64 bytes further apart (bench/README.md).  Floats of
 * padding per row: */
#define INPUT_ROW_PAD 16

/* Row stride (floats) of the BF16 kernels' split input copy xs. */
static inline size_t xs_stride(int k) { return (size_t)(k & ~15) + INPUT_ROW_PAD; }

/* The BF16 kernels: a few input rows against BF16 weights (decode steps):
 * memory-bound, so the widening must cost no shuffles.  32 bits of a BF16
 * row hold elements 2i (low half) and 2i+1 (high half); a shift left by 16
 * makes the low one a float32 and masking off the low half makes the high
 * one a float32.  So each 256-bit load of 16 weights gives two vectors, the
 * even- and the odd-indexed elements, multiplied by the inputs split the
 * same way once per call (xs: per input row and 16-element block, its 8 even
 * then its 8 odd elements).
 *
 * Summation order, for out[i][o]: per 16-element block b < in_dim / 16, in
 * increasing b, lane j accumulates (FMA) W[o][16b+2j]·x[i][16b+2j] and then
 * W[o][16b+2j+1]·x[i][16b+2j+1]; the lanes are summed as in hsum8; the
 * remaining in_dim mod 16 products in increasing k; the bias last.  The same
 * for every n, so a row's result does not depend on the batch (not
 * gemm_small's float32 order: float rounding apart).
 *
 * One input row: blocks of 8 weight rows, one accumulator each, so that
 * many streams are in flight; more rows on AVX-512 CPUs: the wide kernel
 * below; otherwise blocks of 4 weight rows against 2 inputs at a time (8
 * accumulators + the 4 loaded weight vectors fill the 16 AVX2 registers),
 * the block read from memory by the first pair and from L1 by the rest.
 * Meanwhile the next block is prefetched into L2 (cold weights otherwise
 * arrive at a fraction of the bandwidth, bench_linear).
 * Threads take contiguous ranges of blocks. */
#define BF16_ROWS_ONE 8  /* weight rows per block for one input row */
#define BF16_ROWS_MANY 4 /* ... for more, against BF16_INPUTS inputs at a time */
#define BF16_INPUTS 2

/* One output of the BF16 kernels from its lane accumulator: the lanes
 * summed, then the in_dim mod 16 tail products of weight row wr and input
 * row xr in increasing k, then bias[r] (bias may be NULL). */
__attribute__((target("avx2,fma"), always_inline)) static inline float
bf16_finish(__m256 acc, const uint16_t *wr, const float *xr, int k, const float *bias, int r) {
    float s = hsum8(acc);
    for (int j = k & ~15; j < k; j++) s += bf16_to_f32(wr[j]) * xr[j];
    return bias ? s + bias[r] : s;
}

__attribute__((target("avx2,fma"), always_inline)) static inline void
dot_block_bf16(float *out, int out_dim, const uint16_t *w, const float *xs, const float *x, int k,
               const float *bias, const uint16_t *next, int R, int C) {
    const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
    int k16 = k & ~15;
    size_t lds = xs_stride(k);
    __m256 acc[BF16_ROWS_ONE][BF16_INPUTS];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    for (int j = 0; j < k16; j += 16) {
        if (next && (j & 16) == 0) /* a 64-byte line holds 32 elements: every other step */
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) _mm_prefetch((const char *)(next + (size_t)r * k + j), _MM_HINT_T1);
        __m256i v[BF16_ROWS_ONE];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) v[r] = _mm256_loadu_si256((const __m256i *)(w + (size_t)r * k + j));
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) {
            __m256 xe = _mm256_loadu_ps(xs + (size_t)c * lds + j), xo = _mm256_loadu_ps(xs + (size_t)c * lds + j + 8);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                acc[r][c] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v[r], 16)), xe, acc[r][c]);
                acc[r][c] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v[r], hi_mask)), xo, acc[r][c]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++)
            out[(size_t)c * out_dim + r] = bf16_finish(acc[r][c], w + (size_t)r * k, x + (size_t)c * k, k, bias, r);
}

/* The 512-bit kernel (BF16 weights).  A 512-bit FMA does the work of two
 * 256-bit ones on CPUs with full-width AVX-512 units (Zen 5: 2 × 512-bit
 * FMA a cycle, so the 256-bit kernels reach only half the FMA peak;
 * bench/README.md), but 16 lanes over k would change the summation order.
 * So each 512-bit register holds two weight rows' 8 lanes side by side,
 * [row 2p | row 2p+1], and is multiplied by one input's 8 elements
 * broadcast to both halves: every lane runs exactly the 256-bit kernel's
 * FMA sequence, the halves are summed by hsum8, and the results are
 * bit-identical to the AVX2 kernels.  The wide kernels run where
 * zmm_supported (AVX-512 F, DQ and VL). */
#define ZMM_TARGET "avx2,fma,avx512f,avx512dq,avx512vl"

/* The wide kernel (2+ inputs, AVX-512 CPUs).  The pair kernel above
 * re-widens every weight vector for each input pair (a shift and a mask per
 * two FMAs), and each of its accumulators takes two dependent FMAs per step,
 * so its 8 chains barely cover the FMA latency: ~55 GFLOP/s a core against
 * the float32 kernel's ~80.  Here 4 weight rows are loaded as two 512-bit
 * pairs [row 2p | row 2p+1], widened once per 16 elements into 4 registers
 * and used for up to 8 inputs, each input's even and odd elements broadcast
 * to both halves: 16 accumulators, 4 widened
 * vectors, 2 inputs and the mask in 23 of the 32 registers.  The block (4
 * rows, 16 KiB at 2048 inputs) stays in L1 for the next group of inputs.
 * Every lane accumulates the same products in the same order as the pair
 * kernel's lane j, so results are bit-identical to it (test_gemm_small
 * checks both against one scalar model).  Measured in bench/README.md. */
#define BF16_WIDE_ROWS 4
#define BF16_WIDE_INPUTS 8

/* [a (16 BF16) | b (16 BF16)] */
__attribute__((target(ZMM_TARGET), always_inline)) static inline __m512i load_pair_bf16(const uint16_t *a,
                                                                                       const uint16_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

__attribute__((target(ZMM_TARGET), always_inline)) static inline void
dot_block_bf16_wide(float *out, int out_dim, const uint16_t *w, const float *xs, const float *x, int k,
                    const float *bias, const uint16_t *next, int C) {
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    int k16 = k & ~15;
    size_t lds = xs_stride(k);
    __m512 acc[BF16_WIDE_ROWS / 2][BF16_WIDE_INPUTS];
#pragma GCC unroll 2
    for (int p = 0; p < BF16_WIDE_ROWS / 2; p++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) acc[p][c] = _mm512_setzero_ps();
    for (int j = 0; j < k16; j += 16) {
        if (next && (j & 16) == 0) /* a 64-byte line holds 32 elements: every other step */
#pragma GCC unroll 4
            for (int r = 0; r < BF16_WIDE_ROWS; r++)
                _mm_prefetch((const char *)(next + (size_t)r * k + j), _MM_HINT_T1);
        __m512 e[BF16_WIDE_ROWS / 2], o[BF16_WIDE_ROWS / 2];
#pragma GCC unroll 2
        for (int p = 0; p < BF16_WIDE_ROWS / 2; p++) {
            __m512i v = load_pair_bf16(w + (size_t)2 * p * k + j, w + (size_t)(2 * p + 1) * k + j);
            e[p] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            o[p] = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const float *xc = xs + (size_t)c * lds + j;
            __m512 xe = _mm512_broadcast_f32x8(_mm256_loadu_ps(xc));
            __m512 xo = _mm512_broadcast_f32x8(_mm256_loadu_ps(xc + 8));
#pragma GCC unroll 2
            for (int p = 0; p < BF16_WIDE_ROWS / 2; p++) {
                acc[p][c] = _mm512_fmadd_ps(e[p], xe, acc[p][c]);
                acc[p][c] = _mm512_fmadd_ps(o[p], xo, acc[p][c]);
            }
        }
    }
#pragma GCC unroll 2
    for (int p = 0; p < BF16_WIDE_ROWS / 2; p++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            for (int h = 0; h < 2; h++) {
                int r = 2 * p + h;
                __m256 a = h ? _mm512_extractf32x8_ps(acc[p][c], 1) : _mm512_castps512_ps256(acc[p][c]);
                out[(size_t)c * out_dim + r] = bf16_finish(a, w + (size_t)r * k, x + (size_t)c * k, k, bias, r);
            }
}

/* One block of BF16_WIDE_ROWS weight rows against all n inputs; the first
 * group prefetches the next block (next, or NULL). */
__attribute__((target(ZMM_TARGET), noinline)) static void
wide_block(float *out, int out_dim, const uint16_t *w, const float *xs, const float *x, int n, int k,
           const float *bias, const uint16_t *next) {
    size_t lds = xs_stride(k);
    for (int i = 0; i < n; i += BF16_WIDE_INPUTS) {
        float *o = out + (size_t)i * out_dim;
        const float *xsi = xs + (size_t)i * lds, *xi = x + (size_t)i * k;
        const uint16_t *pf = i == 0 ? next : NULL;
        switch (n - i < BF16_WIDE_INPUTS ? n - i : BF16_WIDE_INPUTS) {
        case 8: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 8); break;
        case 7: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 7); break;
        case 6: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 6); break;
        case 5: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 5); break;
        case 4: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 4); break;
        case 3: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 3); break;
        case 2: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 2); break;
        default: dot_block_bf16_wide(o, out_dim, w, xsi, xi, k, bias, pf, 1); break;
        }
    }
}

/* Weight rows per block for n inputs; wide: the 512-bit kernel is used. */
static int bf16_block_rows(int n, int wide) {
    return n == 1 ? BF16_ROWS_ONE : wide ? BF16_WIDE_ROWS : BF16_ROWS_MANY;
}

/* Weight rows [0, rows) of a thread's range against all n inputs. */
__attribute__((target("avx2,fma"), noinline)) static void rows_bf16(float *out, int out_dim, const uint16_t *w,
                                                                     const float *xs, const float *x, int n, int k,
                                                                     const float *bias, int rows, int wide) {
    size_t lds = xs_stride(k);
    int B = bf16_block_rows(n, wide);
    int r = 0;
    for (; r + B <= rows; r += B) {
        const uint16_t *wr = w + (size_t)r * k, *next = r + 2 * B <= rows ? w + (size_t)(r + B) * k : NULL;
        const float *br = bias ? bias + r : NULL;
        if (n == 1) {
            dot_block_bf16(out + r, out_dim, wr, xs, x, k, br, next, BF16_ROWS_ONE, 1);
            continue;
        }
        if (wide) {
            wide_block(out + r, out_dim, wr, xs, x, n, k, br, next);
            continue;
        }
        for (int c = 0; c < n; c += BF16_INPUTS) {
            float *o = out + (size_t)c * out_dim + r;
            const float *xsc = xs + (size_t)c * lds, *xc = x + (size_t)c * k;
            const uint16_t *pf = c == 0 ? next : NULL;
            if (n - c >= 2) dot_block_bf16(o, out_dim, wr, xsc, xc, k, br, pf, BF16_ROWS_MANY, 2);
            else dot_block_bf16(o, out_dim, wr, xsc, xc, k, br, pf, BF16_ROWS_MANY, 1);
        }
    }
    for (; r < rows; r++)
        for (int c = 0; c < n; c++)
            dot_block_bf16(out + (size_t)c * out_dim + r, out_dim, w + (size_t)r * k, xs + (size_t)c * lds,
                           x + (size_t)c * k, k, bias ? bias + r : NULL, NULL, 1, 1);
}

/* Output rows [o0, o1) of a float32 weight against all n inputs (row i at
 * in + i · ldx), in blocks of BLOCK_OUT from o0 (o0 a multiple of
 * BLOCK_OUT); wide: the AVX-512 variant. */
static void rows_f32(float *out, const float *in, size_t ldx, const float *weight, const float *bias, int n,
                     int in_dim, int out_dim, int o0, int o1, int wide) {
    for (int o = o0; o < o1; o += BLOCK_OUT) {
        int rows = out_dim - o < BLOCK_OUT ? out_dim - o : BLOCK_OUT;
        int next_rows = out_dim - o - rows < BLOCK_OUT ? out_dim - o - rows : BLOCK_OUT;
        const float *w = weight + (size_t)o * in_dim, *b = bias ? bias + o : NULL;
        if (wide) weight_block_wide(out + o, in, ldx, w, b, n, in_dim, out_dim, rows, next_rows);
        else weight_block(out + o, in, ldx, w, b, n, in_dim, out_dim, rows, next_rows);
    }
}

/* Every job's product on the SIMD kernels in one parallel region.  The threads
 * take chunks of CHUNK_ROWS output rows (whole blocks; a contiguous 256-704
 * KiB of BF16 weight at the mid-size model's widths) in turn, first come first
 * served, and go on to the next job without waiting: one fork-join for the
 * group.  Handing out chunks instead of one even range per thread matters on
 * shared machines: with even ranges the faster core spun at every join for the
 * slower one (15% of a batched decode step in perf, bench/README.md).  A
 * block's result does not depend on which thread computes it, so the split
 * changes no bits.  BF16 jobs share the input split into even and odd elements
 * (xs), float32 jobs a copy with padded rows (xp; when that cannot be
 * allocated they read `in` itself: slower, same bits).  -1 when xs cannot be
 * allocated, nothing computed. */
static int group_simd(const struct gemm_small_job *jobs, int count, const float *in, int n, int in_dim, int wide) {
    int k16 = in_dim & ~15;
    long long weights = 0;
    int any_bf16 = 0, any_f32 = 0;
    for (int j = 0; j < count; j++) {
        weights += (long long)jobs[j].out_dim * in_dim;
        any_bf16 |= jobs[j].weight.bf16 != NULL;
        any_f32 |= jobs[j].weight.bf16 == NULL;
    }
    size_t ldx = (size_t)in_dim;
    const float *x = in;
    float *xp = NULL;
    if (any_f32 && n > 1 && (xp = malloc((size_t)n * (in_dim + INPUT_ROW_PAD) * sizeof *xp))) {
        ldx = (size_t)in_dim + INPUT_ROW_PAD;
        for (int i = 0; i < n; i++) memcpy(xp + (size_t)i * ldx, in + (size_t)i * in_dim, (size_t)in_dim * sizeof *xp);
        x = xp;
    }
    float *xs = NULL;
    if (any_bf16) {
        size_t lds = xs_stride(in_dim);
        xs = malloc((size_t)n * lds * sizeof *xs);
        if (!xs) {
            free(xp);
            return -1;
        }
        for (int i = 0; i < n; i++)
            for (int b = 0; b < k16; b += 16)
                for (int e = 0; e < 8; e++) {
                    xs[(size_t)i * lds + b + e] = in[(size_t)i * in_dim + b + 2 * e];
                    xs[(size_t)i * lds + b + 8 + e] = in[(size_t)i * in_dim + b + 2 * e + 1];
                }
    }
    int threads = weights >= GEMM_SMALL_PARALLEL_MIN_WEIGHTS ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(threads)
    for (int j = 0; j < count; j++) {
        const struct gemm_small_job *jb = &jobs[j];
        int B = jb->weight.bf16 ? bf16_block_rows(n, wide) : BLOCK_OUT;
        int chunk = (CHUNK_ROWS + B - 1) / B * B;
        int n_chunks = (jb->out_dim + chunk - 1) / chunk;
#pragma omp for schedule(dynamic, 1) nowait
        for (int c = 0; c < n_chunks; c++) {
            int o0 = c * chunk, o1 = o0 + chunk < jb->out_dim ? o0 + chunk : jb->out_dim;
            if (jb->weight.bf16)
                rows_bf16(jb->out + o0, jb->out_dim, jb->weight.bf16 + (size_t)o0 * in_dim, xs, in, n, in_dim,
                          jb->bias ? jb->bias + o0 : NULL, o1 - o0, wide);
            else
                rows_f32(jb->out, x, ldx, jb->weight.f32, jb->bias, n, in_dim, jb->out_dim, o0, o1, wide);
        }
    }
    free(xs);
    free(xp);
    return 0;
}

#else

int gemm_small_simd_supported(void) { return 0; }

#endif

void gemm_small_run(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim,
                    int out_dim, int use_simd) {
    if (n <= 0 || out_dim <= 0) return;
#if defined(__x86_64__)
    if (use_simd && gemm_small_simd_supported()) {
        int wide = use_simd != GEMM_AVX2_ONLY && zmm_supported();
        struct gemm_small_job job = {.out = out, .weight = {.f32 = weight}, .bias = bias, .out_dim = out_dim};
        if (group_simd(&job, 1, in, n, in_dim < 0 ? 0 : in_dim, wide) == 0) return; /* float32 only: cannot fail */
    }
#else
    (void)use_simd;
#endif
    linear_sgemm(out, in, weight, bias, n, in_dim, out_dim);
}

void gemm_small(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim, int out_dim) {
    gemm_small_run(out, in, weight, bias, n, in_dim, out_dim, 1);
}

/* Rows of a BF16 weight widened per panel for sgemm, the panel reused
 * across a weight's panels.  256-row panels cost the mid-size model's
 * 1214-row forward 9-10% against float32 weights (one sgemm per 256 output
 * columns); panels of up to 16 MiB (most weights in one call) 1-3%
 * (bench_forward both_1214, alternated runs, bench/README.md). */
#define BF16_PANEL_ROWS 256
#define BF16_PANEL_FLOATS ((size_t)4 * 1024 * 1024)

/* Rows per widened panel: at least BF16_PANEL_ROWS, more while the panel
 * stays within BF16_PANEL_FLOATS (16 MiB), so that most weights go to sgemm
 * in one call. */
static int panel_rows(int out_dim, int in_dim) {
    size_t rows = BF16_PANEL_FLOATS / (size_t)(in_dim > 0 ? in_dim : 1);
    if (rows < BF16_PANEL_ROWS) rows = BF16_PANEL_ROWS;
    return rows < (size_t)out_dim ? (int)rows : out_dim;
}

static void widen_panel(float *panel, const uint16_t *src, size_t count) {
#pragma omp parallel for schedule(static) if (count >= GEMM_SMALL_PARALLEL_MIN_WEIGHTS)
    for (size_t i = 0; i < count; i++) panel[i] = bf16_to_f32(src[i]);
}

/* Portable path for BF16 weights: widen a panel of rows, sgemm it into its
 * slice of the output columns. */
static int linear_bf16_panels(float *out, const float *in, const uint16_t *weight, const float *bias, int n,
                              int in_dim, int out_dim) {
    int rows = panel_rows(out_dim, in_dim);
    float *panel = malloc((size_t)rows * (in_dim > 0 ? in_dim : 1) * sizeof *panel);
    if (!panel) return -1;
    int ld = in_dim > 0 ? in_dim : 1;
    for (int o = 0; o < out_dim; o += rows) {
        int m = out_dim - o < rows ? out_dim - o : rows;
        widen_panel(panel, weight + (size_t)o * in_dim, (size_t)m * in_dim);
        if (bias)
            for (int i = 0; i < n; i++) memcpy(out + (size_t)i * out_dim + o, bias + o, (size_t)m * sizeof *out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, in_dim, 1.0f, in, ld, panel, ld, bias ? 1.0f : 0.0f,
                    out + o, out_dim);
    }
    free(panel);
    return 0;
}

int gemm_small_group(const struct gemm_small_job *jobs, int count, const float *in, int n, int in_dim) {
    if (n <= 0 || count <= 0) return 0;
#if defined(__x86_64__)
    if (gemm_small_simd_supported()) return group_simd(jobs, count, in, n, in_dim < 0 ? 0 : in_dim,
                                                       zmm_supported());
#endif
    for (int j = 0; j < count; j++) {
        const struct gemm_small_job *jb = &jobs[j];
        if (jb->weight.bf16) {
            if (gemm_bf16_run(jb->out, in, jb->weight.bf16, jb->bias, n, in_dim, jb->out_dim, 1)) return -1;
        } else {
            gemm_small_run(jb->out, in, jb->weight.f32, jb->bias, n, in_dim, jb->out_dim, 1);
        }
    }
    return 0;
}

int gemm_bf16_run(float *out, const float *in, const uint16_t *weight, const float *bias, int n, int in_dim,
                  int out_dim, int use_simd) {
    if (n <= 0 || out_dim <= 0) return 0;
#if defined(__x86_64__)
    if (use_simd && n <= GEMM_BF16_SMALL_MAX_ROWS && gemm_small_simd_supported()) {
        int wide = use_simd != GEMM_AVX2_ONLY && zmm_supported();
        struct gemm_small_job job = {.out = out, .weight = {.bf16 = weight}, .bias = bias, .out_dim = out_dim};
        return group_simd(&job, 1, in, n, in_dim < 0 ? 0 : in_dim, wide);
    }
#else
    (void)use_simd;
#endif
    return linear_bf16_panels(out, in, weight, bias, n, in_dim < 0 ? 0 : in_dim, out_dim);
}

/* din = beta·din + dy · widen(weight): each panel of weight rows [o, o+m)
 * contributes dy[:, o:o+m] · panel, accumulated by sgemm (beta applies to
 * the first panel only). */
int gemm_bf16_backward_input(float *din, const float *dy, const uint16_t *weight, int n, int in_dim, int out_dim,
                             float beta) {
    if (n <= 0 || in_dim <= 0) return 0;
    if (out_dim <= 0) {
        for (size_t i = 0; i < (size_t)n * in_dim; i++) din[i] = beta == 0.0f ? 0.0f : beta * din[i];
        return 0;
    }
    int rows = panel_rows(out_dim, in_dim);
    float *panel = malloc((size_t)rows * in_dim * sizeof *panel);
    if (!panel) return -1;
    for (int o = 0; o < out_dim; o += rows) {
        int m = out_dim - o < rows ? out_dim - o : rows;
        widen_panel(panel, weight + (size_t)o * in_dim, (size_t)m * in_dim);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_dim, m, 1.0f, dy + o, out_dim, panel, in_dim,
                    o == 0 ? beta : 1.0f, din, in_dim);
    }
    free(panel);
    return 0;
}
