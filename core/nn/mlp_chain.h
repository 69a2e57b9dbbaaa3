/* Forward and backward of the small MLPs around the LM, which all share one
 * shape: linear₀ → (exact GELU → linearᵢ)… with no activation after the last
 * linear.  That covers the understanding aligner (fc1, hidden_layers), the
 * generation aligner (fc1, hidden_layers) and the generation head
 * (proj_out → GELU → vision_head).
 *
 * A linear may carry a LoRA adapter (nn/lora.h): its output gains
 * scale·(x·Aᵀ)·Bᵀ and the backward adds the adapter's gradients.
 *
 * Activations: the forward keeps each linear's output before the GELU,
 * acts = [n, dims[0]] ++ [n, dims[1]] ++ … then, per adapted linear, its
 * [n, rank] adapter input u, then [n, max rank] of backward scratch
 * (mlp_chain_act_floats, caller-owned); the first blocks' last is the
 * chain's output.  The backward recomputes the GELU
 * outputs from them.  Gradients accumulate (+=) into gw/gb, which point into
 * the trainer's gradient arena (NULL pointers: that layer's gradient is not
 * wanted, e.g. a forward-only reference pass never calls the backward). */
#ifndef DSR_MLP_CHAIN_H
#define DSR_MLP_CHAIN_H

#include <stddef.h>

#include "base/error.h"
#include "nn/lora.h"
#include "nn/weight.h"

#define MLP_CHAIN_MAX 16

struct mlp_chain {
    int n_layers;
    int in_dim;
    int dims[MLP_CHAIN_MAX];                    /* output width of each linear */
    struct weight w[MLP_CHAIN_MAX];             /* [dims[i], dims[i-1] or in_dim], float32 or BF16 */
    const float *b[MLP_CHAIN_MAX];              /* [dims[i]] */
    float *gw[MLP_CHAIN_MAX], *gb[MLP_CHAIN_MAX]; /* gradients, same shapes (NULL: frozen, w may be BF16) */
    struct lora lora[MLP_CHAIN_MAX];            /* adapter of each linear (.a NULL: none) */
    float *ga[MLP_CHAIN_MAX], *gbl[MLP_CHAIN_MAX]; /* its A and B gradients (needed by the backward) */
};

/* Floats of the acts buffer for n rows. */
size_t mlp_chain_act_floats(const struct mlp_chain *c, size_t n);
/* Widest layer output (the backward's two work buffers are n × this). */
int mlp_chain_max_dim(const struct mlp_chain *c);
/* Pointer to the chain's output inside acts. */
float *mlp_chain_output(const struct mlp_chain *c, float *acts, size_t n);

/* acts ← activations of x[n, in_dim]; work holds n × max_dim floats.  -1
 * only when widening a BF16 weight cannot allocate (op_linear_w). */
int mlp_chain_forward(const struct mlp_chain *c, const float *x, int n, float *acts, float *work, struct dsr_err *err);

/* dy[n, dims[last]] is the gradient of the output.  Adds the weight
 * gradients; writes dx[n, in_dim] unless dx is NULL.  work1 holds n × max_dim
 * floats, work2 twice that.  -1 as mlp_chain_forward. */
int mlp_chain_backward(const struct mlp_chain *c, const float *x, int n, const float *acts, const float *dy, float *dx,
                       float *work1, float *work2, struct dsr_err *err);

#endif
