/* Pillow/PyTorch-compatible bicubic resampling; see bicubic.h.  The
 * arithmetic (double kernel weights, their normalisation, the fixed-point
 * rounding and the clip after each pass) follows Pillow's Resample.c step by
 * step so results match exactly, not just closely; the flavours differ only
 * in the number of fractional bits of the fixed-point weights. */
#include "image/bicubic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pillow: fixed-point weights with 8 bits of pixel value plus 2 bits of
 * headroom (the kernel's negative lobes let partial sums leave [0, 255]) in
 * an int32, i.e. 22 fractional bits. */
#define BICUBIC_PIL_PRECISION_BITS (32 - 8 - 2)

/* Keys' cubic convolution kernel with a = -0.5 (support 2). */
static double cubic_kernel(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Rounds a fixed-point sum with p fractional bits to 8 bits, clipping as
 * Pillow's clip8 table does. */
static uint8_t clip8(int32_t v, int p) {
    if (v < 0) return 0;
    v >>= p;
    return v > 255 ? 255 : (uint8_t)v;
}

/* The taps of one 1-D pass: output i reads `count[i]` source samples from
 * `first[i]` with weights `w[i * ksize ...]`, fixed point with `precision`
 * fractional bits. */
struct taps {
    int ksize, precision;
    int *first, *count;
    int32_t *w;
};

static void taps_free(struct taps *t) {
    free(t->first);
    free(t->count);
    free(t->w);
}

static int taps_init(struct taps *t, int in_size, int out_size, enum bicubic_flavor flavor,
                     struct dsr_err *err) {
    memset(t, 0, sizeof *t);
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale; /* stretch the kernel only when shrinking */
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc(sizeof(double) * (size_t)ksize);
    double *norm = malloc(sizeof(double) * (size_t)out_size * (size_t)ksize); /* normalised weights */
    t->ksize = ksize;
    t->first = malloc(sizeof(int) * (size_t)out_size);
    t->count = malloc(sizeof(int) * (size_t)out_size);
    t->w = calloc((size_t)out_size * (size_t)ksize, sizeof(int32_t));
    if (!k || !norm || !t->first || !t->count || !t->w) {
        free(k);
        free(norm);
        taps_free(t);
        return dsr_errf(err, "bicubic resize: out of memory for %d x %d taps", out_size, ksize);
    }
    double wmax = 0.0;
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        double inv = 1.0 / filterscale;
        int lo = (int)(center - support + 0.5); /* truncation, as Pillow */
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double sum = 0.0;
        for (int x = 0; x < n; x++) {
            k[x] = cubic_kernel((x + lo - center + 0.5) * inv);
            sum += k[x];
        }
        double *nw = norm + (size_t)i * ksize;
        for (int x = 0; x < n; x++) {
            nw[x] = sum != 0.0 ? k[x] / sum : k[x];
            if (nw[x] > wmax) wmax = nw[x];
        }
        t->first[i] = lo;
        t->count[i] = n;
    }
    int p = BICUBIC_PIL_PRECISION_BITS;
    if (flavor == BICUBIC_TORCH) {
        /* PyTorch stores int16 weights: the most fractional bits (up to 22)
         * that keep the largest weight below 2^15. */
        for (p = 0; p < 22; p++)
            if ((int)(0.5 + wmax * (1 << (p + 1))) >= (1 << 15)) break;
    }
    t->precision = p;
    for (int i = 0; i < out_size; i++)
        for (int x = 0; x < t->count[i]; x++) {
            double kx = norm[(size_t)i * ksize + x], f = kx * (1 << p);
            t->w[(size_t)i * ksize + x] = (int32_t)(kx < 0 ? f - 0.5 : f + 0.5);
        }
    free(norm);
    free(k);
    return 0;
}

/* Horizontal pass over source rows [row0, row0 + nrows) into dst (dst_w wide). */
static void pass_horizontal(const uint8_t *src, int src_w, int row0, int nrows, uint8_t *dst, int dst_w,
                            const struct taps *t) {
#pragma omp parallel for if ((long)nrows * dst_w > 65536)
    for (int y = 0; y < nrows; y++) {
        const uint8_t *srow = src + (size_t)(row0 + y) * src_w * 3;
        uint8_t *drow = dst + (size_t)y * dst_w * 3;
        for (int x = 0; x < dst_w; x++) {
            const int32_t *w = t->w + (size_t)x * t->ksize;
            const uint8_t *s = srow + (size_t)t->first[x] * 3;
            int32_t r = 1 << (t->precision - 1), g = r, b = r; /* +0.5 for rounding */
            for (int k = 0; k < t->count[x]; k++) {
                r += s[3 * k + 0] * w[k];
                g += s[3 * k + 1] * w[k];
                b += s[3 * k + 2] * w[k];
            }
            drow[3 * x + 0] = clip8(r, t->precision);
            drow[3 * x + 1] = clip8(g, t->precision);
            drow[3 * x + 2] = clip8(b, t->precision);
        }
    }
}

/* Vertical pass: src holds source rows starting at source row `row0`. */
static void pass_vertical(const uint8_t *src, int width, int row0, uint8_t *dst, int dst_h, const struct taps *t) {
    size_t stride = (size_t)width * 3;
#pragma omp parallel for if ((long)dst_h * width > 65536)
    for (int y = 0; y < dst_h; y++) {
        const int32_t *w = t->w + (size_t)y * t->ksize;
        const uint8_t *base = src + (size_t)(t->first[y] - row0) * stride;
        uint8_t *drow = dst + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t acc = 1 << (t->precision - 1);
            for (int k = 0; k < t->count[y]; k++) acc += base[(size_t)k * stride + i] * w[k];
            drow[i] = clip8(acc, t->precision);
        }
    }
}

int bicubic_resize_rgb8(const uint8_t *src, int src_w, int src_h, uint8_t *dst, int dst_w, int dst_h,
                        enum bicubic_flavor flavor, struct dsr_err *err) {
    if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0)
        return dsr_errf(err, "bicubic resize: bad sizes %dx%d -> %dx%d", src_w, src_h, dst_w, dst_h);
    int need_h = dst_w != src_w, need_v = dst_h != src_h;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)src_w * src_h * 3);
        return 0;
    }
    struct taps th = {0}, tv = {0};
    uint8_t *tmp = NULL;
    int rc = 0;
    if (need_v && taps_init(&tv, src_h, dst_h, flavor, err) != 0) return -1;
    if (need_h && taps_init(&th, src_w, dst_w, flavor, err) != 0) {
        taps_free(&tv);
        return -1;
    }
    /* The horizontal pass only needs the source rows the vertical one reads. */
    int row0 = 0, row1 = src_h;
    if (need_v) {
        row0 = tv.first[0];
        row1 = tv.first[dst_h - 1] + tv.count[dst_h - 1];
    }
    if (need_h && need_v) {
        tmp = malloc((size_t)dst_w * (size_t)(row1 - row0) * 3);
        if (!tmp) {
            rc = dsr_errf(err, "bicubic resize: out of memory for a %dx%d intermediate", dst_w, row1 - row0);
        } else {
            pass_horizontal(src, src_w, row0, row1 - row0, tmp, dst_w, &th);
            pass_vertical(tmp, dst_w, row0, dst, dst_h, &tv);
        }
    } else if (need_h) {
        pass_horizontal(src, src_w, 0, src_h, dst, dst_w, &th);
    } else {
        pass_vertical(src, src_w, 0, dst, dst_h, &tv);
    }
    free(tmp);
    taps_free(&th);
    taps_free(&tv);
    return rc;
}
