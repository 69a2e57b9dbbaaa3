/* Convolution helpers against direct-definition references: im2col + GEMM
 * conv (padded, strided, asymmetric padding, banded scratch as small as one
 * output row), GroupNorm with and without swish, nearest ×2 upsampling. */
#include <math.h>
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

static void check_conv(struct th *t, struct dsr_rng *r, struct conv2d c, int h, int w, const char *what) {
    float *weight = random_buf(r, (size_t)c.cout * c.cin * c.k * c.k);
    float *bias = random_buf(r, (size_t)c.cout);
    float *in = random_buf(r, (size_t)c.cin * h * w);
    c.weight = (struct weight){.f32 = weight};
    c.bias = bias;
    int ho = conv2d_out_size(h, c.k, c.stride, c.pad_top, c.pad_bottom);
    int wo = conv2d_out_size(w, c.k, c.stride, c.pad_left, c.pad_right);
    size_t n_out = (size_t)c.cout * ho * wo;
    float *want = malloc(n_out * sizeof *want), *got = malloc(n_out * sizeof *got);
    conv_reference(&c, in, h, w, want);
    /* one row of scratch (many bands) and the whole image in one band */
    size_t row = conv2d_row_floats(&c, w);
    size_t caps[2] = {row, row * (size_t)ho};
    float *col = malloc((caps[1] + 1) * sizeof *col);
    for (int i = 0; i < 2; i++) {
        conv2d_forward(&c, in, h, w, got, col, caps[i], NULL);
        TH_CLOSE(t, what, got, want, n_out, 1e-5);
    }
    /* the weight held as BF16: exactly the float32 result on the rounded weight */
    size_t nw = (size_t)c.cout * c.cin * c.k * c.k;
    uint16_t *w16 = malloc(nw * sizeof *w16);
    for (size_t i = 0; i < nw; i++) {
        w16[i] = st_f32_to_bf16(weight[i]);
        weight[i] = bf16_to_f32(w16[i]);
    }
    float *got16 = malloc(n_out * sizeof *got16), *wide = malloc(nw * sizeof *wide);
    conv2d_forward(&c, in, h, w, got, col, caps[1], NULL);
    struct conv2d c16 = c;
    c16.weight = (struct weight){.bf16 = w16};
    TH_CHECK(t, conv2d_wide_floats(&c16) == nw && conv2d_wide_floats(&c) == 0, "%s: wide scratch size", what);
    conv2d_forward(&c16, in, h, w, got16, col, caps[1], wide);
    TH_CHECK(t, memcmp(got, got16, n_out * sizeof *got) == 0, "%s: BF16-held weight differs from the rounded float32 one",
             what);
    free(w16);
    free(got16);
    free(wide);
    free(weight);
    free(bias);
    free(in);
    free(want);
    free(got);
    free(col);
}

static void test_conv(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 11);
    check_conv(t, &r, (struct conv2d){.cin = 5, .cout = 7, .k = 3, .stride = 1, 1, 1, 1, 1}, 9, 11, "3x3 same");
    check_conv(t, &r, (struct conv2d){.cin = 4, .cout = 6, .k = 3, .stride = 2, 0, 0, 1, 1}, 10, 10,
               "3x3 stride 2 pad right/bottom");
    check_conv(t, &r, (struct conv2d){.cin = 6, .cout = 3, .k = 1, .stride = 1, 0, 0, 0, 0}, 7, 5, "1x1");
    TH_CHECK(t, conv2d_out_size(32, 3, 2, 0, 1) == 16, "downsample output size");
}

static void test_groupnorm(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 12);
    const int C = 8, hw = 13, G = 4;
    float *x = random_buf(&r, (size_t)C * hw), *wt = random_buf(&r, C), *b = random_buf(&r, C);
    for (int i = 0; i < C * hw; i++) x[i] = 3.0f + 2.0f * x[i]; /* offset mean: tests the centring */
    float want[8 * 13], got[8 * 13];
    for (int swish = 0; swish < 2; swish++) {
        for (int g = 0; g < G; g++) {
            int n = C / G * hw;
            const float *xs = x + g * n;
            double mean = 0, var = 0;
            for (int i = 0; i < n; i++) mean += xs[i];
            mean /= n;
            for (int i = 0; i < n; i++) var += (xs[i] - mean) * (xs[i] - mean);
            var /= n;
            for (int i = 0; i < n; i++) {
                int ch = g * (C / G) + i / hw;
                double y = (xs[i] - mean) / sqrt(var + 1e-6) * wt[ch] + b[ch];
                want[g * n + i] = (float)(swish ? y / (1 + exp(-y)) : y);
            }
        }
        groupnorm_forward(got, x, wt, b, C, hw, G, 1e-6f, swish);
        TH_CLOSE(t, swish ? "groupnorm+swish" : "groupnorm", got, want, (size_t)C * hw, 1e-5);
    }
    /* in place gives the same */
    groupnorm_forward(x, x, wt, b, C, hw, G, 1e-6f, true);
    TH_CLOSE(t, "groupnorm in place", x, want, (size_t)C * hw, 1e-5);
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
