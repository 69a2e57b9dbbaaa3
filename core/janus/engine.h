/* Batched model computations over a janus_runtime, run by the runtime's
 * owner (in dsrd the compute worker thread).  Inputs arrive tokenized and
 * preprocessed; score outputs go into buffers the caller allocated, so a
 * request's memory stays with its caller.
 *
 *   engine_score:   teacher-forced log-probs of any number of items (from
 *                   several requests) as ONE batched tf_logprobs forward;
 *                   images to see go through one batched vision pass, codes
 *                   to see through one batched VQ decode, PNG targets
 *                   through one batched VQ encode.
 *   engine_rollout: a group of captions or images, optional dual rewards,
 *                   optional decoded pixels, and the seen image's vision
 *                   features (what a later update of these rollouts needs). */
#ifndef DSR_JANUS_ENGINE_H
#define DSR_JANUS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "runtime.h"
#include "janus/rollout.h"
#include "janus/teacher_forcing.h"

/* An image the model must see: preprocessed vision pixels, or VQ codes
 * (decoded, clamped to [-1, 1], then seen). */
struct seen_image {
    const float *pixels;  /* [3, S, S] vision input, or NULL */
    const int32_t *codes; /* [n_codes], or NULL */
};

struct score_request {
    const int32_t *context; /* image placeholders filled from `see` */
    int n_context;
    struct seen_image see;  /* both NULL: no image */
    enum tf_target_kind kind;
    int32_t *target;        /* [n_target]; filled here from target_pixels when given */
    int n_target;
    const float *target_pixels; /* [3, Sv, Sv] in [-1, 1] to VQ-encode into target (n_target = n_codes) */
    float *logprobs;        /* out: [n_target] */
};

/* Vision tower outputs [n, N, vision hidden] (before the aligner) of n
 * images to see, each given as pixels or codes; one batched pass. */
int engine_vision_features(struct janus_runtime *rt, const struct seen_image *const *see, int n, float *features,
                           struct dsr_err *err);

int engine_score(struct janus_runtime *rt, struct score_request *const *reqs, int n, struct dsr_err *err);

struct rollout_request {
    bool understanding;
    const int32_t *context;
    int n_context;
    struct seen_image see;            /* understanding */
    const float *vq_pixels;           /* understanding, PNG input: [3, Sv, Sv] for R_U (else see.codes) */
    int n, max_tokens;
    float cfg_scale;
    struct sampling_params sp;
    bool score, decode_pixels;
    const int32_t *rg_context;        /* generation score: und_context(dual question) */
    int n_rg_context;
    const int32_t *rg_target;         /* generation score: rg_target(prompt) */
    int n_rg_target;
};

struct rollout_output {
    struct text_group text;   /* understanding */
    struct image_group image; /* generation */
    double *rewards;          /* [n] when score */
    float *pixels;            /* [n, 3, Sv, Sv] decoded (generation, decode_pixels) */
    float *features;          /* [N, vision hidden] of the seen image (understanding with an image), or NULL */
};
void rollout_output_free(struct rollout_output *o);

int engine_rollout(struct janus_runtime *rt, const struct rollout_request *rq, struct rollout_output *out,
                   struct dsr_err *err);

/* Sample g's tokens (text, up to max_tokens) or codes, their sampling
 * log-probs, and its length. */
const int32_t *rollout_output_tokens(const struct janus_runtime *rt, const struct rollout_request *rq,
                                     const struct rollout_output *o, int g, const float **logprobs, int *n);

#endif
