#include "nn/conv2d.h"
#include "nn/vec_math.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

int conv2d_out_size(int n, int k, int stride, int pad_lo, int pad_hi) {
    return (n + pad_lo + pad_hi - k) / stride + 1;
}

static bool conv2d_is_pointwise(const struct conv2d *c) {
    return c->k == 1 && c->stride == 1 && c->pad_top == 0 && c->pad_left == 0 && c->pad_bottom == 0 &&
           c->pad_right == 0;
}

size_t conv2d_wide_floats(const struct conv2d *c) {
    return c->weight.bf16 ? (size_t)c->cout * c->cin * c->k * c->k : 0;
}

size_t conv2d_row_floats(const struct conv2d *c, int w) {
    if (conv2d_is_pointwise(c)) return 0;
    int w_out = conv2d_out_size(w, c->k, c->stride, c->pad_left, c->pad_right);
    return (size_t)c->cin * c->k * c->k * (size_t)w_out;
}

/* One tap of a stride-1 convolution whose output rows are as wide as its
 * input's (w_out = w): dst[r·w + ox] = src[(iy0 + r)·w + ox + dx], zero
 * outside the h×w plane.  Consecutive output rows then read consecutive
 * input rows, so the valid rows are one copy (not one per row) and only the
 * |dx| edge columns of each row need zeroing afterwards. */
static void same_row_taps(const float *src, int h, int w, int iy0, int dx, int n_rows, float *dst) {
    int r_lo = iy0 < 0 ? -iy0 : 0, r_hi = h - iy0 < n_rows ? h - iy0 : n_rows;
    if (r_hi <= r_lo) {
        memset(dst, 0, (size_t)n_rows * w * sizeof *dst);
        return;
    }
    memset(dst, 0, (size_t)r_lo * w * sizeof *dst);
    memset(dst + (size_t)r_hi * w, 0, (size_t)(n_rows - r_hi) * w * sizeof *dst);
    /* the valid rows' block, shifted by dx; the elements it would take from
     * before or after the plane are edge columns, zeroed below */
    ptrdiff_t from = (ptrdiff_t)(iy0 + r_lo) * w + dx, to = (ptrdiff_t)(iy0 + r_hi) * w + dx;
    ptrdiff_t lo = from < 0 ? 0 : from, hi = to > (ptrdiff_t)h * w ? (ptrdiff_t)h * w : to;
    float *block = dst + (size_t)r_lo * w;
    memcpy(block + (lo - from), src + lo, (size_t)(hi - lo) * sizeof *dst);
    for (int r = 0; r < r_hi - r_lo; r++) {
        float *row = block + (size_t)r * w;
        for (int ox = 0; ox < -dx && ox < w; ox++) row[ox] = 0.0f;
        for (int ox = w - dx < 0 ? 0 : w - dx; ox < w; ox++) row[ox] = 0.0f;
    }
}

/* col[(ci·k + ky)·k + kx][(oy - r0)·w_out + ox] = in[ci][oy·s - pad_top + ky][ox·s - pad_left + kx],
 * zero outside the image, for output rows r0 .. r0 + n_rows - 1 of one
 * image whose channel ci starts at in + ci·ch_stride; col's rows are
 * col_ld floats apart (several images' bands side by side).
 * Split over the threads by taps: it alternates band by band with the sgemm,
 * and with OpenBLAS's OpenMP build both run on the same team (with its
 * pthreads build, OpenMP workers here spun against OpenBLAS's threads and
 * cut throughput 2-3×, so this was single-threaded until 2026-12-02). */
static void im2col_rows(const struct conv2d *c, const float *in, size_t ch_stride, int h, int w, int w_out, int r0,
                        int n_rows, float *col, size_t col_ld) {
    const int k = c->k, s = c->stride;
    const int n_taps = c->cin * k * k;
#pragma omp parallel for schedule(static) if ((size_t)n_taps * n_rows * w_out >= 32768)
    for (int q = 0; q < n_taps; q++) {
        const int ci = q / (k * k), ky = (q / k) % k, kx = q % k;
        const float *src = in + (size_t)ci * ch_stride;
        float *dst = col + (size_t)q * col_ld;
        if (s == 1 && w_out == w) {
            same_row_taps(src, h, w, r0 - c->pad_top + ky, kx - c->pad_left, n_rows, dst);
            continue;
        }
        /* valid output columns: 0 <= ox·s - pad_left + kx < w */
        int ox_lo = 0;
        while (ox_lo < w_out && ox_lo * s - c->pad_left + kx < 0) ox_lo++;
        int ox_hi = w_out;
        while (ox_hi > ox_lo && (ox_hi - 1) * s - c->pad_left + kx >= w) ox_hi--;
        for (int r = 0; r < n_rows; r++) {
            float *d = dst + (size_t)r * w_out;
            const int iy = (r0 + r) * s - c->pad_top + ky;
            if (iy < 0 || iy >= h) {
                memset(d, 0, (size_t)w_out * sizeof *d);
                continue;
            }
            const float *srow = src + (size_t)iy * w;
            for (int ox = 0; ox < ox_lo; ox++) d[ox] = 0.0f;
            if (s == 1) {
                memcpy(d + ox_lo, srow + ox_lo - c->pad_left + kx, (size_t)(ox_hi - ox_lo) * sizeof *d);
            } else {
                for (int ox = ox_lo; ox < ox_hi; ox++) d[ox] = srow[ox * s - c->pad_left + kx];
            }
            for (int ox = ox_hi; ox < w_out; ox++) d[ox] = 0.0f;
        }
    }
}

void conv2d_forward(const struct conv2d *c, const float *in, int n, int h, int w, float *out, float *col,
                    size_t col_cap, float *wide) {
    const int h_out = conv2d_out_size(h, c->k, c->stride, c->pad_top, c->pad_bottom);
    const int w_out = conv2d_out_size(w, c->k, c->stride, c->pad_left, c->pad_right);
    const size_t hw_in = (size_t)h * w, hw_out = (size_t)h_out * w_out;
    const size_t ld_out = (size_t)n * hw_out; /* out as a [cout, n·hw_out] matrix */
    const int n_taps = c->cin * c->k * c->k;
    if (n <= 0 || h_out <= 0 || w_out <= 0) return;
    const float *weight = c->weight.f32;
    if (!weight) {
        size_t nw = conv2d_wide_floats(c);
        for (size_t i = 0; i < nw; i++) wide[i] = bf16_to_f32(c->weight.bf16[i]);
        weight = wide;
    }

    /* The bias seeds the output; every GEMM below then accumulates (beta 1). */
    float beta = 0.0f;
    if (c->bias) {
#pragma omp parallel for schedule(static)
        for (int co = 0; co < c->cout; co++)
            for (size_t i = 0; i < ld_out; i++) out[(size_t)co * ld_out + i] = c->bias[co];
        beta = 1.0f;
    }

    if (conv2d_is_pointwise(c)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)ld_out, c->cin, 1.0f, weight, c->cin,
                    in, (int)ld_out, beta, out, (int)ld_out);
        return;
    }

    const size_t per_image = (size_t)n_taps * hw_out;
    if (per_image <= col_cap) {
        /* whole images per GEMM: [cout, n_taps] · [n_taps, imgs·hw_out] */
        int imgs = col_cap / per_image > (size_t)n ? n : (int)(col_cap / per_image);
        for (int i0 = 0; i0 < n; i0 += imgs) {
            int k = n - i0 < imgs ? n - i0 : imgs;
            size_t n_cols = (size_t)k * hw_out;
            for (int j = 0; j < k; j++)
                im2col_rows(c, in + (size_t)(i0 + j) * hw_in, (size_t)n * hw_in, h, w, w_out, 0, h_out,
                            col + (size_t)j * hw_out, n_cols);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, (int)n_cols, n_taps, 1.0f, weight, n_taps,
                        col, (int)n_cols, beta, out + (size_t)i0 * hw_out, (int)ld_out);
        }
        return;
    }
    /* Bands of output rows of one image sized to the scratch: [cout, n_taps] · [n_taps, band]. */
    size_t rows_fit = col_cap / ((size_t)n_taps * w_out);
    int band = rows_fit < 1 ? 1 : rows_fit > (size_t)h_out ? h_out : (int)rows_fit;
    for (int img = 0; img < n; img++)
        for (int r0 = 0; r0 < h_out; r0 += band) {
            int n_rows = h_out - r0 < band ? h_out - r0 : band;
            int n_cols = n_rows * w_out;
            im2col_rows(c, in + (size_t)img * hw_in, (size_t)n * hw_in, h, w, w_out, r0, n_rows, col, (size_t)n_cols);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->cout, n_cols, n_taps, 1.0f, weight, n_taps, col,
                        n_cols, beta, out + (size_t)img * hw_out + (size_t)r0 * w_out, (int)ld_out);
        }
}

void groupnorm_forward(float *out, const float *in, const float *weight, const float *bias, int channels, int n,
                       int hw, int groups, float eps, bool swish) {
    const int per_group = channels / groups;
    const size_t plane = (size_t)hw, ch_stride = (size_t)n * hw; /* channel ch of image i at (ch·n + i)·hw */
#pragma omp parallel for schedule(dynamic, 1)
    for (int task = 0; task < n * groups; task++) {
        const int img = task / groups, g = task % groups;
        const float *first = in + (size_t)g * per_group * ch_stride + (size_t)img * plane;
        double sum = 0.0;
        for (int cc = 0; cc < per_group; cc++) sum += vec_sum(first + (size_t)cc * ch_stride, plane);
        const double count = (double)per_group * (double)plane;
        const double mean = sum / count;
        double sq = 0.0;
        for (int cc = 0; cc < per_group; cc++) sq += vec_sum_sq_dev(first + (size_t)cc * ch_stride, plane, mean);
        const double rstd = 1.0 / sqrt(sq / count + eps);
        for (int cc = 0; cc < per_group; cc++) {
            const int ch = g * per_group + cc;
            const float scale = (float)(rstd * weight[ch]);
            const float shift = (float)(bias[ch] - mean * rstd * weight[ch]);
            const float *x = in + (size_t)ch * ch_stride + (size_t)img * plane;
            float *y = out + (size_t)ch * ch_stride + (size_t)img * plane;
            for (int i = 0; i < hw; i++) y[i] = x[i] * scale + shift;
            if (swish) vec_silu(y, (size_t)hw);
        }
    }
}

void upsample_nearest2x(float *out, const float *in, int channels, int h, int w) {
    const int w2 = 2 * w;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < channels; ch++) {
        const float *src = in + (size_t)ch * h * w;
        float *dst = out + (size_t)ch * 4 * h * w;
        for (int y = 0; y < h; y++) {
            float *d0 = dst + (size_t)(2 * y) * w2;
            for (int x = 0; x < w; x++) d0[2 * x] = d0[2 * x + 1] = src[(size_t)y * w + x];
            memcpy(d0 + w2, d0, (size_t)w2 * sizeof *d0);
        }
    }
}
