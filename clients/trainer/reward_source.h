/* --reward: turns a step's rollout groups into the rewards behind the
 * advantages (group.rewards), after /rollout has filled them with the
 * server's self-rewards.
 *
 *   self      kept as they are;
 *   shuffled  permuted within each group (reward_shuffle.h), seeded by
 *             --seed and the step;
 *   command   replaced by the external grader's (reward_cmd.h): for a caption
 *             the data image's absolute path and the caption text; for a
 *             generated image its PNG, written to a directory of this run
 *             (under $TMPDIR, else /tmp) and removed once graded, and the
 *             prompt.  group.self_rewards keep the server's for the log.
 *
 * Ownership: a struct reward_env owns the grader process and the directory
 * until reward_env_close. */
#ifndef DSR_TRAIN_REWARD_SOURCE_H
#define DSR_TRAIN_REWARD_SOURCE_H

#include "reward_cmd.h"
#include "rollouts.h"
#include "train_config.h"

struct reward_env {
    const struct train_config *cfg;
    struct reward_cmd grader;
    int grader_running;
    char tmpdir[4096]; /* "" when none */
};

/* Starts what cfg->reward needs (the grader and its directory). */
int reward_env_open(struct reward_env *r, const struct train_config *cfg, struct dsr_err *err);

/* step: the step these groups train (1-based).  -1 with err naming the
 * item when the grader fails. */
int rewards_apply(struct reward_env *r, struct group *groups, int n_groups, long step, struct dsr_err *err);

/* Stops the grader and removes the directory. */
void reward_env_close(struct reward_env *r);

#endif
