/* The training routes' model work (/update, /checkpoint, /reload), run only
 * on the compute worker thread, serialized with every other job.
 *
 * Memory: the trainer (gradient arena + AdamW first and second moments,
 * 3 × the trainable weights in float32) is allocated lazily by the first
 * /update, so a server that only scores and samples never pays for it.
 * --reference keeps a copy of the initial trainable weights from start-up
 * (1 × the trainable weights) as the KL reference for β > 0 updates without
 * ref_logprobs; the copy moves into the trainer when it is created.  It
 * stays the start-up weights across /reload.
 *
 * Rollout cache and /reload: cached rollouts stay citable after a reload;
 * their old log-probs are the ones the sampling policy produced, which is
 * exactly what the GRPO importance ratio needs. */
#ifndef DSRD_LEARNER_H
#define DSRD_LEARNER_H

#include <stdbool.h>
#include <stddef.h>

#include "train/checkpoint.h"
#include "janus/engine.h"
#include "proto_error.h"
#include "rollout_cache.h"
#include "janus/runtime.h"
#include "train/train.h"

/* The learner's side of dsrd: the core trainer (gradients, AdamW moments)
 * and the KL reference, owned by the compute worker.  (dsr-train's resume
 * file is clients/trainer/train_state.h; core's trainer is train/train.h.) */
struct learner_state {
    struct trainer tr;
    bool active;          /* tr allocated (by the first update) */
    float *reference;     /* --reference weights until the trainer takes them, else NULL */
    size_t memory_budget; /* --update-memory-budget: activation bytes per micro-batch, 0 = one pass */
    long updates;         /* steps applied by this process */
};

/* With keep_reference the start-up weights are copied (float32: BF16-stored
 * trainable tensors are widened first, as the first update does anyway). */
int  learner_state_init(struct learner_state *ts, struct janus_model *m, bool keep_reference,
                        size_t memory_budget, struct dsr_err *err);
void learner_state_free(struct learner_state *ts);

/* One sample as the HTTP thread prepared it.  Cited (rollout_id set): the
 * rollout cache supplies kind, context, image features, completion and old
 * log-probs.  Explicit: everything given, the image (if any) still to be
 * seen through the vision tower. */
struct update_sample {
    const char *rollout_id;
    enum tf_target_kind kind;
    const int32_t *context;
    int n_context;
    struct seen_image see;
    const int32_t *completion;
    int n_completion;
    float advantage;
    const float *old_logprobs, *ref_logprobs;
    int n_ref;
    char param[PROTO_PARAM_MAX]; /* "samples[3]", "pairs[0].rejected": errors name it */
};

struct update_request {
    bool simpo;
    const struct update_sample *samples; /* SimPO: chosen, rejected of each pair */
    int n_samples;
    struct grpo_hyper grpo;
    struct simpo_hyper simpo_h;
    struct adamw_hyper adam;
};

/* Backward, then one AdamW step.  Errors: 404 for an unknown rollout id,
 * 400 for a request the model cannot train on, 500 otherwise; the weights
 * are unchanged on any error. */
int learner_update(struct janus_runtime *rt, struct learner_state *ts, struct rollout_cache *cache,
                  const struct update_request *rq, struct train_stats *stats, struct proto_error *e);

/* Writes the live weights (and optimizer state when a trainer exists) to dir,
 * which must not exist yet, with the extra file when one is given. */
int learner_checkpoint(const struct janus_runtime *rt, const struct learner_state *ts, const char *dir, long policy_version,
                      const struct checkpoint_extra *extra, struct proto_error *e);

/* Loads the weights (and optimizer state when a trainer exists) of the
 * checkpoint in dir into the live model; *policy_version from it. */
int learner_reload(struct janus_runtime *rt, struct learner_state *ts, const char *dir, long *policy_version,
                  struct proto_error *e);

#endif
