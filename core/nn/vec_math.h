/* Elementwise activations over float32 arrays through glibc's vector math
 * library (libmvec, its AVX2 variants: ≤ 4 ulp from the exact function), 8
 * lanes at a time, the tail padded into a vector too, so every element takes
 * the same path whatever its position; on CPUs without AVX2 (and off x86-64)
 * scalar libm.  libm's scalar erff costs ~13 ns an element on this machine,
 * libmvec's ~0.5 (bench/README.md).  Single-threaded: callers split the work.
 * Buffers are caller-owned; in place. */
#ifndef DSR_VEC_MATH_H
#define DSR_VEC_MATH_H

#include <stddef.h>

/* x[i] = 0.5·x[i]·(1 + erf(x[i]/√2)) (GELU, erf form). */
void vec_gelu_erf(float *x, size_t n);

/* x[i] = x[i] / (1 + exp(−x[i])) (SiLU / swish). */
void vec_silu(float *x, size_t n);

#endif
