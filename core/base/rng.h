/* Deterministic pseudo-random numbers (xoshiro256** seeded by splitmix64).
 *
 * State is a plain value owned by the caller, so every stream is explicit and
 * reproducible: the same seed gives the same numbers on every machine. */
#ifndef DSR_RNG_H
#define DSR_RNG_H

#include <stdint.h>

struct dsr_rng {
    uint64_t s[4];
};

void     rng_seed(struct dsr_rng *r, uint64_t seed);
uint64_t rng_next_u64(struct dsr_rng *r);
double   rng_uniform(struct dsr_rng *r); /* [0, 1) with 53 random bits */
double   rng_normal(struct dsr_rng *r);  /* standard normal (Box-Muller) */

#endif
