#include "step_stats.h"

#include <string.h>

#include "advantage.h"

void reward_summary_of(const double *rewards, int n_groups, int group_size, struct reward_summary *s) {
    memset(s, 0, sizeof *s);
    s->groups = n_groups;
    if (n_groups <= 0) return;
    reward_stats(rewards, n_groups * group_size, &s->mean, &s->std);
    double sum_std = 0;
    for (int g = 0; g < n_groups; g++) {
        const double *r = rewards + (size_t)g * group_size;
        double mean, std;
        reward_stats(r, group_size, &mean, &std);
        sum_std += std;
        int equal = 1;
        for (int i = 1; i < group_size && equal; i++) equal = r[i] == r[0];
        s->zero_std_groups += equal;
    }
    s->group_std = sum_std / n_groups;
    s->zero_std_frac = (double)s->zero_std_groups / n_groups;
}
