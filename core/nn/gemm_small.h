/* gemm_small: out = in · Wᵀ (+ bias) for a handful of input rows (decode steps).
 *
 * OpenBLAS's sgemm packs the weight on every call, so with few rows it streams
 * W at a fraction of memory bandwidth.  This kernel reads W once, straight from
 * its row-major layout, while the n input rows stay in cache: each thread owns
 * a contiguous range of output rows, and for every block of 4 weight rows it
 * computes the dot products with all n inputs (3 at a time, 12 AVX2
 * accumulators; 6 at a time in AVX-512's 32 registers) before moving on, so
 * the block is fetched from memory once and re-read from L1/L2 for the other
 * inputs.
 *
 * Summation order (SIMD path), for out[i][o]:
 *   lane j (0..7) accumulates in[i][k]·W[o][k] for k ≡ j (mod 8), k < in_dim
 *   rounded down to a multiple of 8, in increasing k, with FMA;
 *   the 8 lanes are summed pairwise ((0+4, 1+5, 2+6, 3+7), then (0+2, 1+3),
 *   then 0+1); the remaining in_dim mod 8 products are added in increasing k;
 *   the bias, if any, is added last.
 * Results therefore differ from sgemm/sgemv by float rounding only.
 *
 * Buffers are caller-owned: out[n * out_dim], in[n * in_dim],
 * weight[out_dim * in_dim] (row-major, one row per output), bias[out_dim] or
 * NULL.  No alignment is required.  out must not overlap the inputs. */
#ifndef DSR_GEMM_SMALL_H
#define DSR_GEMM_SMALL_H

#include <stdint.h>

#include "nn/weight.h"

/* On AVX2+FMA CPUs op_linear sends 2..GEMM_SMALL_MAX_ROWS rows here (one row
 * goes to sgemv, more rows to sgemm; without AVX2 it keeps sgemv for 2 rows).  Measured with bench/bench_linear (bench/README.md):
 * at 32 rows this kernel is faster than sgemm at every decode shape, at 64
 * sgemm has caught up (it is compute-bound there and packs into its own
 * cache-blocked layout; here 64 rows × 2816 inputs no longer stay in L2). */
#define GEMM_SMALL_MAX_ROWS 32

/* gemm_bf16_run's small-batch kernel takes up to this many rows: reading
 * BF16 it keeps a 4-row weight block in L1 (AVX-512 CPUs), so at 64 rows it
 * still beats widening panels for sgemm (bench/README.md). */
#define GEMM_BF16_SMALL_MAX_ROWS 64

/* Nonzero when this CPU runs the AVX2+FMA kernel (x86-64 with both features). */
int gemm_small_simd_supported(void);

/* use_simd value for the kernels below: the AVX2 kernels even on an
 * AVX-512 CPU (tests compare the two). */
#define GEMM_AVX2_ONLY 2

/* out[n, out_dim] = in[n, in_dim] · weight[out_dim, in_dim]ᵀ (+ bias).
 * use_simd nonzero: the AVX2+FMA kernel when the CPU supports it (its
 * 24-accumulator variant on AVX-512 F/DQ/VL CPUs, same results, unless
 * use_simd is GEMM_AVX2_ONLY);
 * zero, or an unsupported CPU: the portable path (cblas_sgemm).  Any n,
 * in_dim, out_dim ≥ 0 are valid (nothing is written when n or out_dim is 0).
 * Call from outside OpenMP parallel regions for the threaded path. */
void gemm_small_run(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim,
                    int out_dim, int use_simd);

/* gemm_small_run with the SIMD kernel whenever the CPU supports it. */
void gemm_small(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim, int out_dim);

/* The same product with a BF16 weight (uint16 bit patterns, [out_dim,
 * in_dim]), computed in float32: out = in · widen(weight)ᵀ (+ bias).
 *   n ≤ GEMM_BF16_SMALL_MAX_ROWS with use_simd on an AVX2 CPU: kernels for
 *     decode steps reading BF16 straight from memory (half the bytes of
 *     float32), splitting each 16-weight load into even and odd elements
 *     with a shift and a mask (no shuffles), in the summation order
 *     documented at the BF16 kernels (gemm_small.c): the same for every n
 *     and every kernel, not gemm_small's (float rounding apart); from 2 rows
 *     on an AVX-512 CPU a 512-bit kernel that widens once for 8 inputs (its 32
 *     registers), unless use_simd is GEMM_AVX2_ONLY; -1 when the
 *     n·in_dim-float scratch cannot be allocated;
 *   otherwise: panels of rows widened into a float32 buffer for sgemm
 *     (allocated per call; -1 when that allocation fails, out untouched
 *     except for finished panels). */
int gemm_bf16_run(float *out, const float *in, const uint16_t *weight, const float *bias, int n, int in_dim,
                  int out_dim, int use_simd);

/* One product of a group sharing its input: out[n, out_dim] = in ·
 * weightᵀ (+ bias), weight float32 or BF16 ([out_dim, in_dim]). */
struct gemm_small_job {
    float *out;
    struct weight weight;
    const float *bias; /* [out_dim] or NULL */
    int out_dim;
};

/* Products that share an input (a decode step's q/k/v, gate/up) in one
 * parallel region: each job's result is bit-identical to gemm_small_run /
 * gemm_bf16_run with use_simd = 1 on its own (same kernels, same order), at
 * one fork-join for the group instead of one per product.  Without the AVX2
 * kernel the jobs run one by one on the portable paths.  Returns 0, or -1
 * when scratch cannot be allocated (outputs then unspecified). */
int gemm_small_group(const struct gemm_small_job *jobs, int count, const float *in, int n, int in_dim);

/* The input gradient through a BF16 weight [out_dim, in_dim] (the
 * backward of gemm_bf16_run): din[n, in_dim] = beta·din + dy[n, out_dim] ·
 * widen(weight), a panel of weight rows at a time into sgemm (allocated per
 * call; -1 when that fails, din untouched). */
int gemm_bf16_backward_input(float *din, const float *dy, const uint16_t *weight, int n, int in_dim, int out_dim,
                             float beta);

#endif
