/* Causal multi-head attention core of the training path (no KV cache):
 * forward out = softmax(scale · Q Kᵀ + causal mask) V and its backward, for
 * one sequence whose rows are positions 0 … n−1, scale = 1/√head_dim.
 *
 * Causality makes the score matrix lower-triangular, so the rows are taken
 * in blocks of block_rows: rows [i0, i1) see only keys [0, i1), and every
 * GEMM of that block is cut to those columns.  The masked tiles above the
 * diagonal blocks are never computed (about half the FLOPs of full n×n
 * products).  The backward recomputes the probabilities block by block
 * rather than keeping them from the forward.
 *
 * Layout: q, out, d_out, dq are [n, n_heads·head_dim] row-major, head h in
 * columns [h·head_dim, (h+1)·head_dim); k, v, dk, dv are
 * [n, n_kv_heads·head_dim].  Query head h reads KV head h / (n_heads /
 * n_kv_heads) (grouped-query attention).  All buffers are caller-owned;
 * scratch holds ta_scratch_floats(n, block_rows) floats. */
#ifndef DSR_TRAIN_ATTENTION_H
#define DSR_TRAIN_ATTENTION_H

#include <stddef.h>

/* Row-block size the trainer uses (bench/bench_attention.c measures it). */
#define TA_BLOCK_ROWS 128

struct ta_dims {
    int n_heads, n_kv_heads, head_dim; /* n_heads a multiple of n_kv_heads */
    int block_rows;                    /* >= 1; >= n gives full n×n products */
};

/* Scratch floats for sequences of up to max_seq_len rows: the probabilities
 * and their gradient for one row block, 2 · min(block_rows, n) · n. */
size_t ta_scratch_floats(int max_seq_len, int block_rows);

/* out (overwritten) = attention of q over k, v. */
void ta_forward(const struct ta_dims *d, int n, const float *q, const float *k, const float *v, float *out,
                float *scratch);

/* Gradients from d_out = ∂L/∂out: dq is overwritten; dk and dv accumulate
 * (+=, summed over the query heads of each KV group), so the caller zeroes
 * them first. */
void ta_backward(const struct ta_dims *d, int n, const float *q, const float *k, const float *v, const float *d_out,
                 float *dq, float *dk, float *dv, float *scratch);

#endif
