/* Turning decoded requests into engine inputs on the HTTP thread:
 * tokenizing spans, templating contexts, preprocessing images, checking
 * placeholder counts and sequence lengths.  Failures fill a proto_error
 * naming the field. */
#ifndef DSRD_PREPARE_H
#define DSRD_PREPARE_H

#include <limits.h>

#include "config.h"
#include "janus/engine.h"
#include "janus/runtime.h"
#include "proto_request.h"

/* Resolves rel inside root (the directory of flag, for messages): relative,
 * no ".." component, and its real path (symlinks followed) still inside
 * root.  out receives the real path.  404 when it does not exist. */
int prep_resolve_under(const char *root, const char *flag, const char *rel, const char *path, char out[PATH_MAX],
                       struct proto_error *e);

/* Request limits derived from the model and the flags ({"path"} images are
 * read here, under --image-root). */
void prep_limits(const struct janus_runtime *rt, const struct dsrd_config *cfg, struct proto_limits *lim);

/* One teacher-forced item and the buffers it owns. */
struct prepared_item {
    struct tok_ids context;
    float *see_pixels;
    float *target_pixels;
    int32_t *target;
    float *logprobs;
    struct score_request req;
};
void prepared_item_free(struct prepared_item *p);

/* Span → ids (text tokenized without special tokens, or the ids verbatim). */
int prep_span_tokens(const struct janus_runtime *rt, const struct proto_span *sp, const char *param, struct tok_ids *out,
                     struct proto_error *e);
/* Span → text (ids decoded, special tokens skipped); *text malloc'ed. */
int prep_span_text(const struct janus_runtime *rt, const struct proto_span *sp, const char *param, char **text,
                   size_t *len, struct proto_error *e);
/* An image to see: RGB preprocessed for the vision tower, codes borrowed. */
int prep_see(const struct janus_runtime *rt, const struct proto_image *im, const char *param, struct seen_image *see,
             float **pixels_owned, struct proto_error *e);
/* RGB preprocessed to the VQ size, in [-1, 1], for encoding. */
int prep_vq_pixels(const struct janus_runtime *rt, const struct proto_image *im, const char *param, float **out,
                   struct proto_error *e);
/* Context placeholder count must be N with an image, 0 without. */
int prep_check_placeholders(const struct janus_runtime *rt, const int32_t *ids, size_t n, bool has_image,
                            const char *param, struct proto_error *e);

/* The three item kinds behind /logprobs, /score and /openrlhf/reward. */
int prep_logprobs_item(const struct janus_runtime *rt, const struct proto_logprobs_item *it, const char *param,
                       struct prepared_item *p, struct proto_error *e);
/* R_U: codes of the image given gen_context(response text). */
int prep_understanding_reward(const struct janus_runtime *rt, const struct proto_image *image, const char *text,
                              size_t len, const char *param, struct prepared_item *p, struct proto_error *e);
/* R_U of a response given as ids: context from janus_runtime_gen_context_ids
 * (the same context a rollout's reward uses). */
int prep_understanding_reward_ids(const struct janus_runtime *rt, const struct proto_image *image, const int32_t *ids,
                                  int n, const char *param, struct prepared_item *p, struct proto_error *e);
/* R_G: rg_target(prompt text) given und_context(image, dual question). */
int prep_generation_reward(const struct janus_runtime *rt, const struct proto_image *image, const char *text, size_t len,
                           const char *param, struct prepared_item *p, struct proto_error *e);

#endif
