/* Teacher-forced log-likelihoods of a target span after a context: the
 * mechanism behind both dual self-rewards.
 *
 *   text target  (TF_TARGET_TOKENS): scored by lm_head over the vocabulary;
 *   image target (TF_TARGET_CODES):  scored by the generation head over the
 *                                    codebook, inputs embedded by the
 *                                    generation path.
 *
 * The model input for an item is context ++ target[0 .. n-2]; the hidden state
 * before target token k predicts it.  Context tokens equal to image_token_id
 * are replaced, in order, by rows of image_embeds (the understanding path's
 * aligner output); any other id is embedded by embed_tokens.  All items run
 * as one packed forward; only target rows go through a head, in bounded row
 * chunks so a large vocabulary never needs a [T, V] logits buffer. */
#ifndef DSR_TEACHER_FORCING_H
#define DSR_TEACHER_FORCING_H

#include <stdint.h>

#include "base/error.h"
#include "model/janus_model.h"

enum tf_target_kind { TF_TARGET_TOKENS, TF_TARGET_CODES };

struct tf_item {
    const int32_t *context;    /* [n_context] token ids */
    int n_context;
    const float *image_embeds; /* [n_image_rows, hidden] rows for placeholders; NULL if none */
    int n_image_rows;
    enum tf_target_kind kind;
    const int32_t *target;     /* [n_target] token ids or VQ codes */
    int n_target;
};

/* logprobs receives Σ n_target values, item after item. */
int tf_logprobs(const struct janus_model *m, const struct tf_item *items, int n_items, float *logprobs,
                struct dsr_err *err);

/* Builds the input rows [n_context + n_target - 1, hidden] of one item
 * (exposed for the sampler and the backward pass, which embed the same way). */
int tf_embed_item(const struct janus_model *m, const struct tf_item *it, float *rows, struct dsr_err *err);

/* Embeds context tokens, filling image placeholders from image_embeds. */
int tf_embed_context(const struct janus_model *m, const int32_t *ids, int n, const float *image_embeds,
                     int n_image_rows, float *rows, struct dsr_err *err);

/* log-probabilities of chosen[i] under the head applied to hidden rows
 * [n, hidden]; kind selects lm_head or the generation head. */
int tf_head_logprobs(const struct janus_model *m, enum tf_target_kind kind, const float *hidden, int n,
                     const int32_t *chosen, float *logprobs, struct dsr_err *err);

#endif
