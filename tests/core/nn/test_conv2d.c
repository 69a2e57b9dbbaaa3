/* Convolution helpers against direct-definition references: im2col + GEMM
 * conv (padded, strided, asymmetric padding, banded scratch as small as one
 * output row, several images per GEMM in the [C, n, H, W] layout),
 * GroupNorm with and without swish (per image), nearest ×2 upsampling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "nn/conv2d.h"
#include "io/safetensors.h"
#include "harness.h"
#include "base/rng.h"

static float *random_buf(struct dsr_rng *r, size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(r);
    return x;
}

/* out = conv(in) by the definition, in double. */
static void conv_reference(const struct conv2d *c, const float *in, int h, int w, float *out) {
    int ho = conv2d_out_size(h, c->k, c->stride, c->pad_top, c->pad_bottom);
    int wo = conv2d_out_size(w, c->k, c->stride, c->pad_left, c->pad_right);
    for (int co = 0; co < c->cout; co++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double acc = c->bias ? c->bias[co] : 0.0;
                for (int ci = 0; ci < c->cin; ci++)
                    for (int ky = 0; ky < c->k; ky++)
                        for (int kx = 0; kx < c->k; kx++) {
                            int iy = oy * c->stride - c->pad_top + ky, ix = ox * c->stride - c->pad_left + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            acc += (double)c->weight.f32[((co * c->cin + ci) * c->k + ky) * c->k + kx] *
                                   in[(ci * h + iy) * w + ix];
                        }
                out[(co * ho + oy) * wo + ox] = (float)acc;
            }
}

/* [C, n, hw] ↔ image i's [C, hw] */
static void image_of(float *dst, const float *src, int C, int n, int i, size_t hw) {
    for (int c = 0; c < C; c++) memcpy(dst + (size_t)c * hw, src + ((size_t)c * n + i) * hw, hw * sizeof *dst);
}

static void put_image(float *dst, const float *src, int C, int n, int i, size_t hw) {
    for (int c = 0; c < C; c++) memcpy(dst + ((size_t)c * n + i) * hw, src + (size_t)c * hw, hw * sizeof *dst);
}

/* n images in the [C, n, H, W] layout, each against the reference on its own. */
static void check_conv(struct th *t, struct dsr_rng *r, struct conv2d c, int n, int h, int w, const char *what) {
    float *weight = random_buf(r, (size_t)c.cout * c.cin * c.k * c.k);
    float *bias = random_buf(r, (size_t)c.cout);
    float *in = random_buf(r, (size_t)c.cin * n * h * w);
    c.weight = (struct weight){.f32 = weight};
    c.bias = bias;
    int ho = conv2d_out_size(h, c.k, c.stride, c.pad_top, c.pad_bottom);
    int wo = conv2d_out_size(w, c.k, c.stride, c.pad_left, c.pad_right);
    size_t hw_in = (size_t)h * w, hw_out = (size_t)ho * wo, n_out = (size_t)c.cout * n * hw_out;
    float *want = malloc(n_out * sizeof *want), *got = malloc(n_out * sizeof *got);
    float *one_in = malloc((size_t)c.cin * hw_in * sizeof *one_in), *one_out = malloc((size_t)c.cout * hw_out * sizeof *one_out);
    for (int i = 0; i < n; i++) {
        image_of(one_in, in, c.cin, n, i, hw_in);
        conv_reference(&c, one_in, h, w, one_out);
        put_image(want, one_out, c.cout, n, i, hw_out);
    }
    /* one row of scratch (many bands per image), one image per GEMM, two
     * (the last GEMM takes the odd one), all at once */
    size_t row = conv2d_row_floats(&c, w), image = row * (size_t)ho;
    size_t caps[4] = {row, image, 2 * image, (size_t)n * image};
    float *col = malloc((caps[3] + 1) * sizeof *col);
    for (int i = 0; i < 4; i++) {
        char label[96];
        snprintf(label, sizeof label, "%s, %d images, scratch %zu", what, n, caps[i]);
        conv2d_forward(&c, in, n, h, w, got, col, caps[i], NULL);
        TH_CLOSE(t, label, got, want, n_out, 1e-5);
    }
    /* the weight held as BF16: exactly the float32 result on the rounded weight */
    size_t nw = (size_t)c.cout * c.cin * c.k * c.k;
    uint16_t *w16 = malloc(nw * sizeof *w16);
    for (size_t i = 0; i < nw; i++) {
        w16[i] = st_f32_to_bf16(weight[i]);
        weight[i] = bf16_to_f32(w16[i]);
    }
    float *got16 = malloc(n_out * sizeof *got16), *wide = malloc(nw * sizeof *wide);
    conv2d_forward(&c, in, n, h, w, got, col, caps[1], NULL);
    struct conv2d c16 = c;
    c16.weight = (struct weight){.bf16 = w16};
    TH_CHECK(t, conv2d_wide_floats(&c16) == nw && conv2d_wide_floats(&c) == 0, "%s: wide scratch size", what);
    conv2d_forward(&c16, in, n, h, w, got16, col, caps[1], wide);
    TH_CHECK(t, memcmp(got, got16, n_out * sizeof *got) == 0, "%s: BF16-held weight differs from the rounded float32 one",
             what);
    free(w16);
    free(got16);
    free(wide);
    free(weight);
    free(bias);
    free(in);
    free(one_in);
    free(one_out);
    free(want);
    free(got);
    free(col);
}

static void test_conv(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 11);
    for (int n = 1; n <= 3; n += 2) {
        check_conv(t, &r, (struct conv2d){.cin = 5, .cout = 7, .k = 3, .stride = 1, 1, 1, 1, 1}, n, 9, 11, "3x3 same");
        check_conv(t, &r, (struct conv2d){.cin = 4, .cout = 6, .k = 3, .stride = 2, 0, 0, 1, 1}, n, 10, 10,
                   "3x3 stride 2 pad right/bottom");
        check_conv(t, &r, (struct conv2d){.cin = 6, .cout = 3, .k = 1, .stride = 1, 0, 0, 0, 0}, n, 7, 5, "1x1");
        /* stride 1, output as wide as the input (im2col copies whole row
         * blocks, then zeroes edge columns): wider kernels, one-sided
         * padding, an image narrower than the kernel; and a valid conv */
        check_conv(t, &r, (struct conv2d){.cin = 3, .cout = 4, .k = 5, .stride = 1, 2, 2, 2, 2}, n, 6, 7, "5x5 same");
        check_conv(t, &r, (struct conv2d){.cin = 2, .cout = 3, .k = 3, .stride = 1, 2, 0, 0, 2}, n, 5, 6,
                   "3x3 same, padded top/right");
        check_conv(t, &r, (struct conv2d){.cin = 2, .cout = 2, .k = 3, .stride = 1, 1, 1, 1, 1}, n, 2, 1,
                   "3x3 same on 2x1");
        check_conv(t, &r, (struct conv2d){.cin = 2, .cout = 3, .k = 3, .stride = 1, 0, 0, 0, 0}, n, 6, 6, "3x3 valid");
    }
    TH_CHECK(t, conv2d_out_size(32, 3, 2, 0, 1) == 16, "downsample output size");
}

/* Two images in the [C, n, hw] layout, each normalised on its own. */
static void test_groupnorm(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 12);
    enum { C = 8, HW = 13, G = 4, N = 2 };
    float *x = random_buf(&r, (size_t)C * N * HW), *wt = random_buf(&r, C), *b = random_buf(&r, C);
    for (int i = 0; i < C * N * HW; i++) x[i] = 3.0f + 2.0f * x[i] + (float)(i / HW % N); /* offset, per-image means */
    float want[C * N * HW], got[C * N * HW], img[C * HW], ref[C * HW];
    for (int swish = 0; swish < 2; swish++) {
        for (int i = 0; i < N; i++) {
            image_of(img, x, C, N, i, HW);
            for (int g = 0; g < G; g++) {
                int n = C / G * HW;
                const float *xs = img + g * n;
                double mean = 0, var = 0;
                for (int k = 0; k < n; k++) mean += xs[k];
                mean /= n;
                for (int k = 0; k < n; k++) var += (xs[k] - mean) * (xs[k] - mean);
                var /= n;
                for (int k = 0; k < n; k++) {
                    int ch = g * (C / G) + k / HW;
                    double y = (xs[k] - mean) / sqrt(var + 1e-6) * wt[ch] + b[ch];
                    ref[g * n + k] = (float)(swish ? y / (1 + exp(-y)) : y);
                }
            }
            put_image(want, ref, C, N, i, HW);
        }
        groupnorm_forward(got, x, wt, b, C, N, HW, G, 1e-6f, swish);
        TH_CLOSE(t, swish ? "groupnorm+swish" : "groupnorm", got, want, (size_t)C * N * HW, 1e-5);
    }
    /* in place gives the same */
    groupnorm_forward(x, x, wt, b, C, N, HW, G, 1e-6f, true);
    TH_CLOSE(t, "groupnorm in place", x, want, (size_t)C * N * HW, 1e-5);
    free(x);
    free(wt);
    free(b);
}

static void test_upsample(struct th *t) {
    float in[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float out[2 * 4 * 6];
    upsample_nearest2x(out, in, 2, 2, 3);
    int ok = 1;
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 6; x++) ok &= out[(c * 4 + y) * 6 + x] == in[(c * 2 + y / 2) * 3 + x / 2];
    TH_CHECK(t, ok, "nearest x2 upsample");
}

int main(void) {
    struct th t = {0};
    th_run(&t, "conv", test_conv);
    th_run(&t, "groupnorm", test_groupnorm);
    th_run(&t, "upsample", test_upsample);
    return th_finish(&t, "test_conv2d");
}
