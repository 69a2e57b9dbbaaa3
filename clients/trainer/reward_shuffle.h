/* The shuffled-reward control: each group's rewards permuted at random
 * among its own rollouts before the advantages are computed.
 *
 * The permutation is uniform (Fisher-Yates; the identity is one of the
 * outcomes), so the reward a rollout receives is independent of the
 * rollout: the update costs the same as with real rewards and carries no
 * signal in expectation.  (A derangement would not do: it would
 * anti-correlate rewards with rollouts.)  It depends only on (seed, step,
 * group index), so a run and its --resume shuffle identically. */
#ifndef DSR_TRAIN_REWARD_SHUFFLE_H
#define DSR_TRAIN_REWARD_SHUFFLE_H

#include <stdint.h>

/* Permutes rewards[0..n) in place; group is the group's index in the step. */
void reward_shuffle_group(double *rewards, int n, uint64_t seed, long step, int group);

#endif
