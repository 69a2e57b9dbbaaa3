/* The generation path's own layers around the LM (all trainable):
 *   codes → generation_embeddings [K, embed_dim] → generation_aligner MLP
 *   (fc1 → (GELU → hidden_layers[i])…) → LM input rows [n, hidden];
 *   LM hidden [n, hidden] → generation_head (proj_out → GELU → vision_head)
 *   → logits over the codebook [n, K].
 * HF names: model.generation_embeddings, model.generation_aligner,
 * model.generation_head.
 *
 * Ownership: gen_bind() keeps pointers into the param_table (which must
 * outlive it) and owns the small hidden-layer pointer arrays; gen_release(). */
#ifndef DSR_GEN_PATH_H
#define DSR_GEN_PATH_H

#include <stdint.h>

#include "base/error.h"
#include "io/model_config.h"
#include "model/params.h"

struct gen_path {
    int codebook_size, embed_dim, width, lm_hidden;
    int n_hidden_layers; /* aligner layers after fc1 */
    struct weight embeddings;                /* [K, embed_dim]; BF16 storage possible */
    const float *fc1_w, *fc1_b;              /* [width, embed_dim], [width] */
    const float **hidden_w, **hidden_b;      /* [width, width], [width] each */
    struct weight proj_w;                    /* [width, lm_hidden]; BF16 storage possible */
    const float *proj_b;                     /* [width] */
    struct weight head_w;                    /* [K, width]; BF16 storage possible */
    const float *head_b;                     /* [K] */
};

/* trainable: false when only adapters train (LoRA). */
int  gen_declare(const struct janus_config *c, bool trainable, struct param_table *pt, struct dsr_err *err);
int  gen_bind(const struct janus_config *c, const struct param_table *pt, struct gen_path *out, struct dsr_err *err);
void gen_release(struct gen_path *g);

/* out[n, lm_hidden] = aligner(embeddings[codes]); fails on a code outside
 * the codebook.  scratch-free: uses out and a temporary of n·width floats. */
int gen_embed_codes(const struct gen_path *g, const int32_t *codes, int n, float *out, struct dsr_err *err);

/* logits[n, K] = head(hidden[n, lm_hidden]). */
int gen_head_logits(const struct gen_path *g, const float *hidden, int n, float *logits, struct dsr_err *err);

#endif
