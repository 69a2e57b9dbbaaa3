#include "nn/ops.h"
#include "nn/vec_math.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "nn/gemm_small.h"

void dsr_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

int dsr_get_threads(void) { return omp_get_max_threads(); }

const char *dsr_blas_threading(void) {
    switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    default: return "OpenMP";
    }
}

const char *dsr_blas_core(void) {
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

/* Up to this many rows op_linear uses one sgemv per row (measured: sgemv ×2
 * beats sgemm's packing at 2 rows, loses at 4). */
#define LINEAR_GEMV_MAX_ROWS 2

/* Whether op_linear_w sends n rows through this weight to a small-batch
 * kernel (op_linear's dispatch below, gemm_bf16_run's). */
static bool takes_small_kernel(struct weight w, int n) {
    if (!gemm_small_simd_supported()) return false;
    return w.bf16 ? n <= GEMM_BF16_SMALL_MAX_ROWS : n >= 2 && n <= GEMM_SMALL_MAX_ROWS;
}

void op_linear(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim, int out_dim) {
    if (n <= 0 || out_dim <= 0) return;
    /* 2..GEMM_SMALL_MAX_ROWS rows (batched decode steps), AVX2 CPUs: the
     * small-batch kernel reads the weight once for all rows without packing
     * it; it beats sgemv ×2 at 2 rows and sgemm up to 32 (bench_linear). */
    if (takes_small_kernel((struct weight){.f32 = weight}, n)) {
        gemm_small(out, in, weight, bias, n, in_dim, out_dim);
        return;
    }
    if (bias) {
#pragma omp parallel for if (n > 16)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out_dim; o++) out[(size_t)i * out_dim + o] = bias[o];
    }
    /* A row or two (a decode step): sgemv streams the weight at memory
     * bandwidth, while sgemm packs it first and runs at a fraction of it. */
    if (n <= LINEAR_GEMV_MAX_ROWS)
        for (int i = 0; i < n; i++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, out_dim, in_dim, 1.0f, weight, in_dim, in + (size_t)i * in_dim, 1,
                        bias ? 1.0f : 0.0f, out + (size_t)i * out_dim, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_dim, in_dim, 1.0f, in, in_dim, weight, in_dim,
                    bias ? 1.0f : 0.0f, out, out_dim);
}

int op_linear_w(float *out, const float *in, struct weight weight, const float *bias, int n, int in_dim, int out_dim,
                struct dsr_err *err) {
    if (!weight.bf16) {
        op_linear(out, in, weight.f32, bias, n, in_dim, out_dim);
        return 0;
    }
    if (gemm_bf16_run(out, in, weight.bf16, bias, n, in_dim, out_dim, 1))
        return dsr_errf(err, "out of memory widening a BF16 weight [%d, %d] for %d rows", out_dim, in_dim, n);
    return 0;
}

int op_linear_group(const struct gemm_small_job *jobs, int count, const float *in, int n, int in_dim,
                    struct dsr_err *err) {
    bool small = true;
    for (int j = 0; j < count; j++) small = small && takes_small_kernel(jobs[j].weight, n);
    if (small) {
        if (gemm_small_group(jobs, count, in, n, in_dim))
            return dsr_errf(err, "out of memory splitting %d input rows for BF16 weights", n);
        return 0;
    }
    for (int j = 0; j < count; j++)
        if (op_linear_w(jobs[j].out, in, jobs[j].weight, jobs[j].bias, n, in_dim, jobs[j].out_dim, err)) return -1;
    return 0;
}

int op_linear_w_backward_input(float *din, const float *dy, struct weight weight, int n, int in_dim, int out_dim,
                               float beta, struct dsr_err *err) {
    if (n <= 0 || in_dim <= 0) return 0;
    if (!weight.bf16) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_dim, out_dim, 1.0f, dy, out_dim, weight.f32,
                    in_dim, beta, din, in_dim);
        return 0;
    }
    if (gemm_bf16_backward_input(din, dy, weight.bf16, n, in_dim, out_dim, beta))
        return dsr_errf(err, "out of memory widening a BF16 weight [%d, %d] for its input gradient", out_dim, in_dim);
    return 0;
}

void op_rmsnorm(float *out, const float *in, const float *weight, int n, int dim, float eps) {
#pragma omp parallel for if (n > 16)
    for (int i = 0; i < n; i++) {
        const float *x = in + (size_t)i * dim;
        float *y = out + (size_t)i * dim;
        double ss = vec_sum_sq(x, (size_t)dim);
        float scale = (float)(1.0 / sqrt(ss / dim + eps));
        for (int j = 0; j < dim; j++) y[j] = x[j] * scale * weight[j];
    }
}

void op_rmsnorm_backward(const float *x, const float *w, const float *dy, int n, int dim, float eps, float *dx,
                         float *dw, float *rstd) {
#pragma omp parallel for if (n > 16)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim, *dyr = dy + (size_t)r * dim;
        float *dxr = dx + (size_t)r * dim;
        double ss = vec_sum_sq(xr, (size_t)dim), gx = 0;
        for (int j = 0; j < dim; j++) gx += (double)dyr[j] * w[j] * xr[j];
        double rs = 1.0 / sqrt(ss / dim + eps);
        rstd[r] = (float)rs;
        float c = (float)(rs * rs * rs * gx / dim);
        for (int j = 0; j < dim; j++) dxr[j] += (float)rs * dyr[j] * w[j] - c * xr[j];
    }
    if (!dw) return; /* a frozen norm (LoRA) */
#pragma omp parallel for if (dim > 256)
    for (int j = 0; j < dim; j++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += (double)dy[(size_t)r * dim + j] * x[(size_t)r * dim + j] * rstd[r];
        dw[j] += (float)s;
    }
}

void op_layernorm(float *out, const float *in, const float *weight, const float *bias, int n, int dim, float eps) {
#pragma omp parallel for if (n > 16)
    for (int i = 0; i < n; i++) {
        const float *x = in + (size_t)i * dim;
        float *y = out + (size_t)i * dim;
        double mean = vec_sum(x, (size_t)dim) / dim;
        double var = vec_sum_sq_dev(x, (size_t)dim, mean) / dim;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (int j = 0; j < dim; j++) y[j] = (float)(x[j] - mean) * rstd * weight[j] + bias[j];
    }
}

void op_add_inplace(float *x, const float *y, size_t count) {
#pragma omp parallel for if (count > 65536)
    for (size_t i = 0; i < count; i++) x[i] += y[i];
}

/* Chunks of this many elements per OpenMP task (a multiple of 8, so only the
 * last chunk has a padded tail). */
#define VEC_CHUNK 16384

void op_gelu_erf_inplace(float *x, size_t count) {
    size_t chunks = (count + VEC_CHUNK - 1) / VEC_CHUNK;
#pragma omp parallel for if (count > 65536)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * VEC_CHUNK, n = count - lo < VEC_CHUNK ? count - lo : VEC_CHUNK;
        vec_gelu_erf(x + lo, n);
    }
}

float op_gelu_erf_grad(float x) {
    double cdf = 0.5 * (1.0 + erf(x * M_SQRT1_2));
    double pdf = exp(-0.5 * (double)x * x) / sqrt(2.0 * M_PI);
    return (float)(cdf + x * pdf);
}

void op_swiglu(float *out, const float *gate, const float *up, size_t count) {
    size_t chunks = (count + VEC_CHUNK - 1) / VEC_CHUNK;
#pragma omp parallel for if (count > 65536)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * VEC_CHUNK, n = count - lo < VEC_CHUNK ? count - lo : VEC_CHUNK;
        vec_swiglu(out + lo, gate + lo, up + lo, n);
    }
}

void op_swiglu_backward(const float *gate, const float *up, const float *d_act, float *dgate, float *dup,
                        size_t count) {
    size_t chunks = (count + VEC_CHUNK - 1) / VEC_CHUNK;
#pragma omp parallel for if (count > 65536)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * VEC_CHUNK, n = count - lo < VEC_CHUNK ? count - lo : VEC_CHUNK;
        vec_swiglu_backward(gate + lo, up + lo, d_act + lo, dgate + lo, dup + lo, n);
    }
}

/* The rotation of pair i at position pos: HF's inv_freq = theta^(-2i/d) in
 * float32, the angle in double, cos and sin rounded to float. */
static void rope_cos_sin(int pos, int i, int head_dim, float theta, float *c, float *s) {
    float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
    double angle = (double)pos * (double)inv_freq;
    *c = (float)cos(angle);
    *s = (float)sin(angle);
}

/* Rotates pair (i, i + half) of every head of one row by (c, s). */
static inline void rope_pair(float *row, int n_heads, int head_dim, int i, float c, float s) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = row + (size_t)h * head_dim;
        float a = v[i], b = v[i + half];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
    }
}

/* Rotates each (i, i + half) pair by sign · angle; sign -1 is the transpose
 * (the backward pass of the forward rotation). */
static void rope_rotate(float *x, const int *positions, int n_tokens, int n_heads, int head_dim, float theta,
                        float sign) {
    int half = head_dim / 2;
#pragma omp parallel for if (n_tokens > 16)
    for (int t = 0; t < n_tokens; t++)
        for (int i = 0; i < half; i++) {
            float c, s;
            rope_cos_sin(positions[t], i, head_dim, theta, &c, &s);
            rope_pair(x + (size_t)t * n_heads * head_dim, n_heads, head_dim, i, c, sign * s);
        }
}

void op_rope_table(float *cs, const int *positions, int n_tokens, int head_dim, float theta) {
    int half = head_dim / 2;
#pragma omp parallel for if (n_tokens > 16)
    for (int t = 0; t < n_tokens; t++)
        for (int i = 0; i < half; i++)
            rope_cos_sin(positions[t], i, head_dim, theta, &cs[((size_t)t * half + i) * 2],
                         &cs[((size_t)t * half + i) * 2 + 1]);
}

void op_rope_apply_inplace(float *x, const float *cs, int n_tokens, int n_heads, int head_dim) {
    int half = head_dim / 2;
#pragma omp parallel for if (n_tokens > 16)
    for (int t = 0; t < n_tokens; t++)
        for (int i = 0; i < half; i++) {
            const float *p = cs + ((size_t)t * half + i) * 2;
            rope_pair(x + (size_t)t * n_heads * head_dim, n_heads, head_dim, i, p[0], p[1]);
        }
}

void op_rope_inplace(float *x, const int *positions, int n_tokens, int n_heads, int head_dim, float theta) {
    rope_rotate(x, positions, n_tokens, n_heads, head_dim, theta, 1.0f);
}

void op_rope_backward_inplace(float *x, const int *positions, int n_tokens, int n_heads, int head_dim,
                              float theta) {
    rope_rotate(x, positions, n_tokens, n_heads, head_dim, theta, -1.0f);
}

double op_logsumexp(const float *x, int dim) {
    float mx = -INFINITY;
    for (int j = 0; j < dim; j++) mx = x[j] > mx ? x[j] : mx;
    if (isinf(mx)) return mx;
    double s = 0;
    float e[256];
    for (int j = 0; j < dim; j += 256) {
        int k = dim - j < 256 ? dim - j : 256;
        vec_exp_shifted(e, x + j, mx, (size_t)k);
        for (int i = 0; i < k; i++) s += e[i];
    }
    return mx + log(s);
}

void op_log_softmax_row(float *out, const float *in, int dim) {
    double lse = op_logsumexp(in, dim);
    for (int j = 0; j < dim; j++) out[j] = (float)((double)in[j] - lse);
}

/* Softmax runs serially between attention GEMMs, where it is a third of the
 * time: vec_softmax vectorises it without changing its arithmetic. */
void op_softmax_row(float *x, int dim) {
    if (dim > 0) vec_softmax(x, (size_t)dim);
}
