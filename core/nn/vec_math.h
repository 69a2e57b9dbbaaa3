/* Elementwise math over float32 arrays through glibc's vector math library
 * (libmvec, its AVX2 variants: ≤ 4 ulp from the exact function), 8 lanes at
 * a time, the tail padded into a vector too, so every element takes the same
 * path whatever its position; on CPUs without AVX2 (and off x86-64) scalar
 * libm.  libm's scalar erff costs ~13 ns an element on this machine,
 * libmvec's ~0.5 (bench/README.md).  Also the sums behind the normalisations
 * (RMSNorm, LayerNorm, GroupNorm): in double over 8 interleaved partial sums,
 * since one running double sum is bound by the add's latency (4 cycles an
 * element) and eight vectorise; the same order for every caller.
 * Single-threaded: callers split the work.  Buffers are caller-owned. */
#ifndef DSR_VEC_MATH_H
#define DSR_VEC_MATH_H

#include <stddef.h>

/* x[i] = 0.5·x[i]·(1 + erf(x[i]/√2)) (GELU, erf form). */
void vec_gelu_erf(float *x, size_t n);

/* x[i] = x[i] / (1 + exp(−x[i])) (SiLU / swish). */
void vec_silu(float *x, size_t n);

/* out[i] = exp(in[i] − shift) (softmax and log-sum-exp rows, shift = the
 * row's maximum); out may be in. */
void vec_exp_shifted(float *out, const float *in, float shift, size_t n);

/* x = softmax(x) in place: the maximum subtracted, exp (as
 * vec_exp_shifted), the exps summed in double over 4 interleaved partial
 * sums ((s0 + s1) + (s2 + s3), the tail into s0), then scaled by the float
 * reciprocal of the sum.  The same bits on either path. */
void vec_softmax(float *x, size_t n);

/* Σ x[i], Σ x[i]² and Σ (x[i] − mean)², in double. */
double vec_sum(const float *x, size_t n);
double vec_sum_sq(const float *x, size_t n);
double vec_sum_sq_dev(const float *x, size_t n, double mean);

/* SwiGLU, the Llama MLP's gating: out[i] = silu(gate[i])·up[i]; out may be
 * gate itself.  Inference and training both call it, so a rollout's
 * log-probs and the update's recomputed ones agree bit for bit. */
void vec_swiglu(float *out, const float *gate, const float *up, size_t n);

/* Its backward, given d_act = dL/d out: with s = sigmoid(gate),
 *   dup   = d_act·gate·s
 *   dgate = d_act·up·s·(1 + gate·(1 − s)).
 * dgate may be d_act itself (overwritten in place). */
void vec_swiglu_backward(const float *gate, const float *up, const float *d_act, float *dgate, float *dup, size_t n);

#endif
