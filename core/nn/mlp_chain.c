#include "nn/mlp_chain.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn/ops.h"

static int max_rank(const struct mlp_chain *c) {
    int r = 0;
    for (int i = 0; i < c->n_layers; i++)
        if (lora_present(&c->lora[i]) && c->lora[i].rank > r) r = c->lora[i].rank;
    return r;
}

size_t mlp_chain_act_floats(const struct mlp_chain *c, size_t n) {
    size_t total = 0;
    for (int i = 0; i < c->n_layers; i++)
        total += (size_t)c->dims[i] + (lora_present(&c->lora[i]) ? (size_t)c->lora[i].rank : 0);
    return (total + (size_t)max_rank(c)) * n;
}

int mlp_chain_max_dim(const struct mlp_chain *c) {
    int mx = c->in_dim;
    for (int i = 0; i < c->n_layers; i++) mx = c->dims[i] > mx ? c->dims[i] : mx;
    return mx;
}

static float *act_block(const struct mlp_chain *c, const float *acts, size_t n, int layer) {
    size_t off = 0;
    for (int i = 0; i < layer; i++) off += (size_t)c->dims[i];
    return (float *)acts + off * n;
}

float *mlp_chain_output(const struct mlp_chain *c, float *acts, size_t n) {
    return act_block(c, acts, n, c->n_layers - 1);
}

/* Layer i's adapter input u [n, rank] (after every output block), or, for
 * i == n_layers, the backward's du scratch. */
static float *lora_block(const struct mlp_chain *c, const float *acts, size_t n, int layer) {
    size_t off = 0;
    for (int i = 0; i < c->n_layers; i++) off += (size_t)c->dims[i];
    for (int i = 0; i < layer; i++) off += lora_present(&c->lora[i]) ? (size_t)c->lora[i].rank : 0;
    return (float *)acts + off * n;
}

int mlp_chain_forward(const struct mlp_chain *c, const float *x, int n, float *acts, float *work, struct dsr_err *err) {
    const float *in = x;
    int in_dim = c->in_dim;
    for (int i = 0; i < c->n_layers; i++) {
        float *out = act_block(c, acts, (size_t)n, i);
        if (i > 0) { /* the GELU between layers goes into work, keeping the pre-activation */
            memcpy(work, in, (size_t)n * in_dim * sizeof(float));
            op_gelu_erf_inplace(work, (size_t)n * in_dim);
            in = work;
        }
        if (op_linear_w(out, in, c->w[i], c->b[i], n, in_dim, c->dims[i], err)) return -1;
        if (lora_present(&c->lora[i]))
            lora_forward(out, in, &c->lora[i], n, in_dim, c->dims[i], lora_block(c, acts, (size_t)n, i));
        in = out;
        in_dim = c->dims[i];
    }
    return 0;
}

/* b-gradient: gb[o] += Σ_rows dy[r, o]. */
static void add_column_sums(float *gb, const float *dy, int n, int dim) {
#pragma omp parallel for if (dim > 256)
    for (int o = 0; o < dim; o++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += dy[(size_t)r * dim + o];
        gb[o] += (float)s;
    }
}

int mlp_chain_backward(const struct mlp_chain *c, const float *x, int n, const float *acts, const float *dy, float *dx,
                       float *work1, float *work2, struct dsr_err *err) {
    const float *d_out = dy; /* gradient of layer i's output */
    size_t half = (size_t)n * mlp_chain_max_dim(c);
    for (int i = c->n_layers - 1; i >= 0; i--) {
        int out_dim = c->dims[i], in_dim = i ? c->dims[i - 1] : c->in_dim;
        const float *in = x;
        if (i > 0) { /* layer i's input is GELU(previous pre-activation) */
            const float *pre = act_block(c, acts, (size_t)n, i - 1);
            memcpy(work1, pre, (size_t)n * in_dim * sizeof(float));
            op_gelu_erf_inplace(work1, (size_t)n * in_dim);
            in = work1;
        }
        if (c->gw[i])
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, n, 1.0f, d_out, out_dim, in, in_dim,
                        1.0f, c->gw[i], in_dim);
        if (c->gb[i]) add_column_sums(c->gb[i], d_out, n, out_dim);
        /* ping-pong the gradient between work2's halves (never over dy) */
        float *d_in = i == 0 ? dx : (d_out == work2 ? work2 + half : work2);
        if (d_in && op_linear_w_backward_input(d_in, d_out, c->w[i], n, in_dim, out_dim, 0.0f, err)) return -1;
        if (lora_present(&c->lora[i]))
            lora_backward(in, lora_block(c, acts, (size_t)n, i), d_out, &c->lora[i], n, in_dim, out_dim, c->ga[i],
                          c->gbl[i], d_in, lora_block(c, acts, (size_t)n, c->n_layers));
        if (!d_in) break;
        if (i > 0) {
            const float *pre = act_block(c, acts, (size_t)n, i - 1);
            size_t count = (size_t)n * in_dim;
#pragma omp parallel for if (count > 65536)
            for (size_t j = 0; j < count; j++) d_in[j] *= op_gelu_erf_grad(pre[j]);
            d_out = d_in;
        }
    }
    return 0;
}
