/* Dense float32 kernels shared by every model component.
 *
 * All buffers are row-major float32 and caller-owned; no function allocates.
 * Shapes are given as (rows n, columns dim).  Linear layers follow nn.Linear:
 * weight is [out_dim, in_dim] and out = in · weightᵀ + bias.  GEMMs go through
 * cblas_sgemm (OpenBLAS); the elementwise loops are parallelised with OpenMP
 * over rows.  Reductions accumulate in double where float32 loses digits
 * that the 1e-4 reference tolerance needs (norms, softmax denominators);
 * the exponentials themselves are float expf (within 1 ulp: their sum, not
 * each term, is where float32 would lose digits). */
#ifndef DSR_OPS_H
#define DSR_OPS_H

#include <stddef.h>

#include "base/error.h"
#include "nn/gemm_small.h"
#include "nn/weight.h"

/* Threads used by OpenBLAS and by the OpenMP loops (<= 0: all cores). */
void dsr_set_threads(int n);
int  dsr_get_threads(void);
/* How the linked OpenBLAS runs its GEMMs in parallel: "OpenMP" (the build
 * the Makefile links: one libgomp team for GEMMs and loops), "pthreads" (a
 * second pool of its own) or "sequential".  Static string. */
const char *dsr_blas_threading(void);
/* OpenBLAS's name for the kernels it runs ("Haswell", "Cooperlake", ...),
 * chosen when the library loads from the CPU id, or from OPENBLAS_CORETYPE
 * when that is set (bench/README.md: 1.8x apart in sgemm on this project's
 * Zen 5 machines).  Static string. */
const char *dsr_blas_core(void);

/* out[n, out_dim] = in[n, in_dim] · weight[out_dim, in_dim]ᵀ (+ bias[out_dim] if non-NULL). */
void op_linear(float *out, const float *in, const float *weight, const float *bias, int n, int in_dim, int out_dim);
/* The same for a weight of either storage (nn/weight.h); a BF16 weight is
 * widened in registers (decode-sized n) or a panel at a time into a
 * temporary float32 buffer (nn/gemm_small.h), so this one may allocate:
 * -1 (err says so) when that fails, 0 otherwise. */
int op_linear_w(float *out, const float *in, struct weight weight, const float *bias, int n, int in_dim, int out_dim,
                struct dsr_err *err);

/* op_linear_w of several weights on one input (q/k/v, gate/up): the same
 * results; when every product would take a small-batch kernel (a decode
 * step), they run in one parallel region (gemm_small_group), otherwise one
 * after another.  -1 (err says so) when scratch cannot be allocated. */
int op_linear_group(const struct gemm_small_job *jobs, int count, const float *in, int n, int in_dim,
                    struct dsr_err *err);

/* Its input gradient: din[n, in_dim] = beta·din + dy[n, out_dim] · weight
 * (the weight's own gradient is not computed: frozen weights need none).
 * May allocate for a BF16 weight, as op_linear_w. */
int op_linear_w_backward_input(float *din, const float *dy, struct weight weight, int n, int in_dim, int out_dim,
                               float beta, struct dsr_err *err);

/* out[n, dim] = in / rms(in) * weight  (Llama RMSNorm, statistic in double). */
void op_rmsnorm(float *out, const float *in, const float *weight, int n, int dim, float eps);
/* Its backward: dx[n, dim] += ∂L/∂x, dw[dim] += ∂L/∂w given dy = ∂L/∂out;
 * rstd receives the n reciprocal RMS values.  dw NULL: no weight gradient. */
void op_rmsnorm_backward(const float *x, const float *w, const float *dy, int n, int dim, float eps, float *dx,
                         float *dw, float *rstd);

/* out[n, dim] = (in - mean) / sqrt(var + eps) * weight + bias. */
void op_layernorm(float *out, const float *in, const float *weight, const float *bias, int n, int dim, float eps);

/* x[i] += y[i] */
void op_add_inplace(float *x, const float *y, size_t count);

/* Activations, in place over count elements. */
void op_gelu_erf_inplace(float *x, size_t count); /* exact GELU: x·Φ(x) */
float op_gelu_erf_grad(float x);                  /* its derivative: Φ(x) + x·φ(x) */

/* Llama's SwiGLU over count elements, split over the threads
 * (core/nn/vec_math.h: vec_swiglu, vec_swiglu_backward): out = silu(gate)·up
 * (out may be gate), and its backward (dgate may be d_act). */
void op_swiglu(float *out, const float *gate, const float *up, size_t count);
void op_swiglu_backward(const float *gate, const float *up, const float *d_act, float *dgate, float *dup,
                        size_t count);

/* Rotary position embedding, HF "rotate_half" pairing (i, i + head_dim/2),
 * applied in place to x[n_tokens, n_heads * head_dim]; positions[t] is the
 * absolute position of token t. */
void op_rope_inplace(float *x, const int *positions, int n_tokens, int n_heads, int head_dim, float theta);
/* The same rotation in two steps, for a forward that rotates q and k of
 * every layer at the same positions: op_rope_table fills
 * cs[n_tokens, head_dim/2, 2] with (cos, sin) of each position and pair
 * (computing them is most of op_rope_inplace's time), and
 * op_rope_apply_inplace rotates x with them, bit-identical to
 * op_rope_inplace. */
void op_rope_table(float *cs, const int *positions, int n_tokens, int head_dim, float theta);
void op_rope_apply_inplace(float *x, const float *cs, int n_tokens, int n_heads, int head_dim);
/* The transpose rotation (by -angle): gradient of op_rope_inplace. */
void op_rope_backward_inplace(float *x, const int *positions, int n_tokens, int n_heads, int head_dim,
                              float theta);

/* log Σ exp(x[i]) over dim values (double accumulation). */
double op_logsumexp(const float *x, int dim);

/* out = log_softmax(in) over one row of dim values (in == out allowed). */
void op_log_softmax_row(float *out, const float *in, int dim);

/* In-place softmax over one row of dim values. */
void op_softmax_row(float *x, int dim);

#endif
