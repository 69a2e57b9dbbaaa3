/* Understanding-path image encoder: the ViT vision tower (frozen) and the
 * aligner MLP (trainable) that maps its features to LM embeddings.
 *
 * HF names: model.vision_model.* (tower), model.aligner.* (aligner).
 * Tower: patch embedding (conv with stride = kernel = patch, done as a GEMM
 * over flattened patches) + learned position embedding, n pre-LN encoder
 * layers (biased q/k/v/projection_layer attention, exact-erf GELU MLP),
 * post_layernorm.  Aligner: fc1 → GELU → (hidden_layers[i] → GELU …), the
 * last layer without activation, as HF's JanusVisionAlignerMLP.
 *
 * Ownership: vision_bind() keeps pointers into the param_table; the table
 * must outlive the struct.  No function allocates on the caller's behalf
 * except vision_bind(). */
#ifndef DSR_VISION_H
#define DSR_VISION_H

#include "base/error.h"
#include "io/model_config.h"
#include "model/params.h"

/* The encoder's linear weights may be stored BF16 (nn/weight.h). */
struct vision_layer_weights {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    struct weight q_w, k_w, v_w, proj_w; /* [hidden, hidden] */
    const float *q_b, *k_b, *v_b, *proj_b;
    struct weight fc1_w, fc2_w;          /* [mlp, hidden], [hidden, mlp] */
    const float *fc1_b, *fc2_b;
};

struct vision_model {
    struct vision_config cfg;
    int lm_hidden;
    const float *patch_w, *patch_b; /* [hidden, C, p, p], [hidden] */
    const float *pos_emb;           /* [num_image_tokens, hidden] */
    struct vision_layer_weights *layers;
    const float *post_ln_w, *post_ln_b;
    /* aligner: fc1 [proj, hidden] then depth-1 hidden layers [proj, proj] */
    const float *aligner_fc1_w, *aligner_fc1_b;
    const float **aligner_hidden_w, **aligner_hidden_b;
    struct lora *aligner_lora; /* [depth]: fc1's adapter, then each hidden layer's (.a NULL: none) */
};

/* Declares the tower's tensors (frozen) and the aligner's (trainable). */
/* The tower is frozen; the aligner trains unless aligner_trainable is false
 * (LoRA: only adapters train). */
int vision_declare(const struct janus_config *c, bool aligner_trainable, struct param_table *pt, struct dsr_err *err);
/* lora (may be NULL): binds the aligner's adapters when it targets LORA_UND_ALIGNER. */
int vision_bind(const struct janus_config *c, const struct lora_config *lora, const struct param_table *pt,
                struct vision_model **out, struct dsr_err *err);
void vision_free(struct vision_model *vm);

/* pixels [n_images, C, S, S] (already normalised) → features
 * [n_images, num_image_tokens, vision hidden] (after post_layernorm). */
int vision_tower_forward(const struct vision_model *vm, const float *pixels, int n_images, float *features,
                         struct dsr_err *err);

/* features [n_rows, vision hidden] → embeds [n_rows, lm hidden]. */
int vision_aligner_forward(const struct vision_model *vm, const float *features, int n_rows, float *embeds,
                           struct dsr_err *err);

#endif
