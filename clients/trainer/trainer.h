/* dsr-train's run: the step loop over rollouts, advantages, /update,
 * checkpoints and replica reloads, with crash-safe state.
 *
 * One step:
 *   1. every server (learner and replicas) is at the expected policy_version,
 *      else it reloads the last checkpoint of that version, else the run aborts;
 *   2. --batch-images images and --batch-prompts prompts are taken from the
 *      seeded data streams; one /rollout (n = group size, score) per item,
 *      concurrently, round-robin over --server; a rollout answered by a
 *      server at another version is redone after re-syncing; then --reward
 *      decides the rewards behind the advantages (reward_source.h);
 *   3. the /update request (explicit samples, fresh idempotency key) is saved
 *      next to the state file together with the advanced state, then sent to
 *      the learner, retried with the same key; if the learner restarted, it is
 *      first brought back to the expected version from the last checkpoint;
 *   4. a checkpoint is written when due (every --checkpoint-every steps, and
 *      every step when replicas must follow), then the state commits the step
 *      and one JSONL record is appended to --log.
 *
 * With --eval-cmd, an evaluation (eval_hook.h) runs before the first step
 * and after each due step, on the learner at that step's version. */
#ifndef DSR_TRAIN_TRAINER_H
#define DSR_TRAIN_TRAINER_H

#include <stdio.h>

#include "train_config.h"
#include "base/error.h"

/* Runs cfg->steps steps (or the rest of them with --resume).  progress
 * receives the human-readable progress (stderr); 0 on success. */
int trainer_run(const struct train_config *cfg, FILE *progress, struct dsr_err *err);

/* Prints what a run would do (servers, data, batch, hyper-parameters, the
 * first step's items) without contacting any server. */
int trainer_dry_run(const struct train_config *cfg, FILE *out, struct dsr_err *err);

#endif
