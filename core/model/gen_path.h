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
#include "nn/lora.h"

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
    struct lora proj_lora, head_lora;        /* optional adapters of proj_out / vision_head (.a NULL: none) */
    struct lora *aligner_lora;               /* [1 + n_hidden_layers]: fc1's, then each hidden layer's */
};

/* lora NULL or rank 0: every tensor trainable; with adapters all are
 * frozen.  gen_bind binds the adapters lora names for the head and the
 * generation aligner ("model.generation_head.proj_out.lora_A.weight", ...;
 * declared by janus_model). */
int  gen_declare(const struct janus_config *c, const struct lora_config *lora, struct param_table *pt,
                 struct dsr_err *err);
int  gen_bind(const struct janus_config *c, const struct lora_config *lora, const struct param_table *pt,
              struct gen_path *out, struct dsr_err *err);
void gen_release(struct gen_path *g);

/* out[n, lm_hidden] = aligner(embeddings[codes]), adapters included; fails
 * on a code outside the codebook.  Allocates its temporaries. */
int gen_embed_codes(const struct gen_path *g, const int32_t *codes, int n, float *out, struct dsr_err *err);

/* logits[n, K] = head(hidden[n, lm_hidden]), adapters included. */
int gen_head_logits(const struct gen_path *g, const float *hidden, int n, float *logits, struct dsr_err *err);

#endif
