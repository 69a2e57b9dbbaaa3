#include "reward_shuffle.h"

#include "base/rng.h"

/* splitmix64's finaliser: mixes one input into the seed, so that nearby
 * (step, group) pairs give unrelated streams. */
static uint64_t mix(uint64_t h, uint64_t v) {
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void reward_shuffle_group(double *rewards, int n, uint64_t seed, long step, int group) {
    struct dsr_rng r;
    uint64_t h = mix(seed ^ 0x73687566666c6500ull /* "shuffle" stream */, (uint64_t)step);
    rng_seed(&r, mix(h, (uint64_t)group));
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next_u64(&r) % (uint64_t)(i + 1));
        double t = rewards[i];
        rewards[i] = rewards[j];
        rewards[j] = t;
    }
}
