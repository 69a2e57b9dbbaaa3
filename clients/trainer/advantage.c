#include "advantage.h"

#include <math.h>
#include <string.h>

int scale_rewards_parse(const char *s, enum scale_rewards *out) {
    if (strcmp(s, "group") == 0) *out = SCALE_GROUP;
    else if (strcmp(s, "batch") == 0) *out = SCALE_BATCH;
    else if (strcmp(s, "none") == 0) *out = SCALE_NONE;
    else return -1;
    return 0;
}

const char *scale_rewards_name(enum scale_rewards s) {
    switch (s) {
    case SCALE_GROUP: return "group";
    case SCALE_BATCH: return "batch";
    case SCALE_NONE: return "none";
    }
    return "?";
}

void reward_stats(const double *x, int n, double *mean, double *std) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += x[i];
    double m = n > 0 ? sum / n : 0.0;
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

void grpo_advantages(const double *rewards, int n_groups, int group_size, enum scale_rewards scale, double *adv) {
    double batch_mean, batch_std;
    reward_stats(rewards, n_groups * group_size, &batch_mean, &batch_std);
    for (int g = 0; g < n_groups; g++) {
        const double *r = rewards + (size_t)g * group_size;
        double mean, std;
        reward_stats(r, group_size, &mean, &std);
        double denom = scale == SCALE_GROUP ? std + ADVANTAGE_STD_EPS
                       : scale == SCALE_BATCH ? batch_std + ADVANTAGE_STD_EPS
                                              : 1.0;
        for (int i = 0; i < group_size; i++) adv[(size_t)g * group_size + i] = (r[i] - mean) / denom;
    }
}

int simpo_pair_pick(const double *rewards, int group_size, int *best, int *worst) {
    int b = 0, w = 0;
    for (int i = 1; i < group_size; i++) {
        if (rewards[i] > rewards[b]) b = i;
        if (rewards[i] < rewards[w]) w = i;
    }
    *best = b;
    *worst = w;
    return rewards[b] > rewards[w];
}
