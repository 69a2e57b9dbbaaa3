/* Convolutional building blocks for the VQ-VAE: 2-D convolution as
 * im2col + GEMM, GroupNorm (optionally fused with swish), nearest-neighbour
 * ×2 upsampling.
 *
 * Tensors hold n images channel-major, float32 [C, n, H, W] (each channel's
 * n planes side by side, so a convolution of all n images is one GEMM over
 * n·H·W columns; n = 1 is plain CHW), caller-owned; no function allocates.  Convolution weights
 * follow nn.Conv2d: [cout, cin, k, k], which read row-major is the GEMM's
 * [cout, cin·k·k] matrix, matched by im2col's row order (ci, ky, kx).
 * The weight may be stored BF16 (nn/weight.h, --weights-dtype): it is
 * widened into caller scratch for the GEMM, exactly, so the result is
 * the float32-held weight's bit for bit. */
#ifndef DSR_CONV2D_H
#define DSR_CONV2D_H

#include <stdbool.h>
#include <stddef.h>

#include "nn/weight.h"

/* im2col scratch (floats) worth allocating: 1 MiB, this CPU's L2.  A 3×3
 * conv with 128 input channels on 384×384 would need 680 MB at once;
 * conv2d_forward instead fills the scratch one band of output rows at a
 * time, and a band that stays in cache between im2col and the GEMM's
 * packing beats a bigger one: dsr-shapes' VQ encoding of 8 images took
 * 35-36 ms with 256K floats against 40-42 with 2M (alternated runs,
 * 2026-12-02, OpenBLAS's OpenMP build), and 32 MiB was 2.8× slower still. */
#define CONV2D_COL_BUDGET_FLOATS ((size_t)256 * 1024)

struct conv2d {
    int cin, cout, k, stride;
    int pad_top, pad_left, pad_bottom, pad_right; /* zero padding, pixels */
    struct weight weight;                         /* [cout, cin, k, k], float32 or BF16 */
    const float *bias;                            /* [cout], or NULL */
};

/* Output side length for an input side of n pixels (may be <= 0 when the
 * kernel does not fit). */
int conv2d_out_size(int n, int k, int stride, int pad_lo, int pad_hi);

/* Scratch floats conv2d_forward needs for one output row: cin·k·k·w_out
 * (0 for 1×1 stride-1 unpadded convolutions, which need no im2col). */
size_t conv2d_row_floats(const struct conv2d *c, int w);

/* Scratch floats a BF16 weight is widened into: cout·cin·k·k (0 for a
 * float32 weight). */
size_t conv2d_wide_floats(const struct conv2d *c);

/* out[cout, n, h_out, w_out] = conv(in[cin, n, h, w]), each image on its
 * own.  col is im2col scratch of col_cap floats, at least
 * conv2d_row_floats(c, w); scratch for whole images (cin·k·k·h_out·w_out
 * floats each) lets one GEMM cover several images, less means bands of one
 * image's rows; wide holds conv2d_wide_floats(c) (may be NULL for a float32
 * weight).  in and out must not overlap. */
void conv2d_forward(const struct conv2d *c, const float *in, int n, int h, int w, float *out, float *col,
                    size_t col_cap, float *wide);

/* out[C, n, hw] = GroupNorm(in) of each image, with per-channel affine
 * weight/bias, statistics in double over the (C/groups)·hw values of a
 * group of one image (summed channel by channel); then x·sigmoid(x) when
 * swish.  in == out allowed.  C must be a multiple of groups. */
void groupnorm_forward(float *out, const float *in, const float *weight, const float *bias, int channels, int n,
                       int hw, int groups, float eps, bool swish);

/* out[C, 2h, 2w] = nearest-neighbour ×2 upsampling of in[C, h, w] (C may
 * count channels × images). */
void upsample_nearest2x(float *out, const float *in, int channels, int h, int w);

#endif
