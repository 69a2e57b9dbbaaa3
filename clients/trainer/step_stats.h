/* Reward statistics of one direction in one step, as the JSONL log
 * records them for the experiment's plots. */
#ifndef DSR_TRAIN_STEP_STATS_H
#define DSR_TRAIN_STEP_STATS_H

struct reward_summary {
    int groups;            /* groups summarised */
    double mean, std;      /* over every reward (std unbiased) */
    double group_std;      /* mean over groups of the within-group std (unbiased) */
    double zero_std_frac;  /* fraction of groups whose rewards are all equal:
                            * no learning signal (GRPO advantages 0, no SimPO pair) */
    int zero_std_groups;
};

/* rewards[g * group_size + i] for n_groups groups (n_groups may be 0). */
void reward_summary_of(const double *rewards, int n_groups, int group_size, struct reward_summary *s);

#endif
