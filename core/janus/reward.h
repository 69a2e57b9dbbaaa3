/* The dual self-rewards: how well the model's other direction explains an
 * output.  A reward is the length-normalised teacher-forced log-likelihood
 * of a target after a context, the mean of its per-token log-probs
 * (teacher_forcing.h), in nats per token (≤ 0; higher is better):
 *
 *   R_U(caption; image) = mean_k log π(code_k | gen_context(caption), code_<k)
 *       the image's VQ codes given the caption as a generation prompt;
 *   R_G(image; prompt)  = mean_k log π(t_k | und_context(image, dual question), t_<k)
 *       t = rg_target(prompt), the image seen through the understanding path
 *       (a generated image as its codes, decoded and re-encoded by the
 *       vision tower: image_embeds.h).
 *
 * Contexts and targets come from template.h.  Every place that turns
 * log-probs into a reward (/score, /rollout, /openrlhf/reward, the tests)
 * calls reward_of(); sums are taken in double so a long target does not
 * lose the small terms. */
#ifndef DSR_REWARD_H
#define DSR_REWARD_H

#include <stdint.h>

#include "base/error.h"
#include "model/janus_model.h"

struct reward {
    double reward; /* mean log-prob per target token (0 for an empty target) */
    double sum;    /* total log-prob of the target */
    int count;     /* target tokens */
};

/* The reward of a target whose per-token log-probs are logprobs[n]. */
struct reward reward_of(const float *logprobs, int n);

/* R_U of one caption: gen_context[n_context] are the caption's generation
 * context ids (janus_gen_context), codes[n_codes] the image's VQ codes.
 * logprobs (optional, [n_codes]) receives the per-code log-probs. */
int reward_understanding(const struct janus_model *m, const int32_t *gen_context, int n_context, const int32_t *codes,
                         int n_codes, float *logprobs, struct reward *out, struct dsr_err *err);

/* R_G of one image for a prompt: und_context[n_context] holds the image
 * placeholders that image_embeds[n_image_rows, hidden] fill (the image as
 * the understanding path sees it), target[n_target] = rg_target(prompt).
 * logprobs (optional, [n_target]) receives the per-token log-probs. */
int reward_generation(const struct janus_model *m, const int32_t *und_context, int n_context, const float *image_embeds,
                      int n_image_rows, const int32_t *target, int n_target, float *logprobs, struct reward *out,
                      struct dsr_err *err);

#endif
