/* The /update request of one step, from its scored rollout groups.
 *
 * Every sample is explicit (task, context tokens, image, completion,
 * old_logprobs) rather than citing a rollout id: the request is then valid
 * on any learner process — one that restarted from a checkpoint, or one that
 * never saw the rollouts of a replica — and can be saved and re-sent
 * verbatim with its idempotency key after a crash. */
#ifndef DSR_TRAIN_UPDATE_REQ_H
#define DSR_TRAIN_UPDATE_REQ_H

#include "train_config.h"
#include "rollouts.h"

/* contexts[i] is group i's context token array (borrowed).  Returns a NEW
 * request object, with *n_units the number of samples (GRPO) or pairs
 * (SimPO; 0 when no group has any reward spread), or NULL when out of memory. */
json_t *update_request_build(const struct train_config *cfg, const struct group *groups, int n_groups,
                             json_t *const *contexts, const char *idempotency_key, int *n_units);

#endif
