/* Group-relative advantages (GRPO) and preference pairs (SimPO) from the
 * dual self-rewards of rollout groups.
 *
 * Follows TRL's GRPOTrainer: A = r - mean(group), divided by (std + 1e-4)
 * unless scaling is "none"; std is torch.std, i.e. unbiased (n - 1), taken
 * over the group ("group") or over every reward of the batch ("batch").
 * Rewards are laid out group after group: rewards[g * group_size + i]. */
#ifndef DSR_TRAIN_ADVANTAGE_H
#define DSR_TRAIN_ADVANTAGE_H

enum scale_rewards { SCALE_GROUP, SCALE_BATCH, SCALE_NONE };

#define ADVANTAGE_STD_EPS 1e-4

/* Parses "group" | "batch" | "none"; -1 when unknown. */
int scale_rewards_parse(const char *s, enum scale_rewards *out);
const char *scale_rewards_name(enum scale_rewards s);

/* Mean and unbiased standard deviation of n values (std 0 when n < 2). */
void reward_stats(const double *x, int n, double *mean, double *std);

/* Writes n_groups * group_size advantages into adv (group_size >= 1). */
void grpo_advantages(const double *rewards, int n_groups, int group_size, enum scale_rewards scale, double *adv);

/* Best and worst member of one group (first index wins ties).  Returns 1
 * when best's reward is strictly greater than worst's (a usable pair), 0
 * when the group has no spread. */
int simpo_pair_pick(const double *rewards, int group_size, int *best, int *worst);

#endif
