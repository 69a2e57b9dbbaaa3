/* Unlabelled training data: PNG files of a directory (understanding) and
 * prompt lines of a file (generation), visited in a seeded order.
 *
 * Item k of the stream (k = the cursor) is element perm_e[k mod n] with
 * e = k / n the epoch and perm_e a Fisher-Yates shuffle seeded by (seed,
 * stream, e): the order depends only on --seed, and a cursor alone resumes it.
 *
 * Ownership: a struct dataset owns its strings; dataset_free releases them. */
#ifndef DSR_TRAIN_DATASET_H
#define DSR_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define DATASET_MAX_ITEMS 1000000
#define DATASET_MAX_PROMPT_BYTES 4096

struct dataset {
    char **items; /* image paths or prompts, in sorted / file order */
    size_t n;
    uint64_t seed; /* mixes the stream id in */
    uint64_t epoch; /* epoch of perm (UINT64_MAX: none yet) */
    size_t *perm;
};

/* Every *.png (case-insensitive) directly in dir, sorted by name. */
int dataset_load_images(struct dataset *d, const char *dir, uint64_t seed, struct dsr_err *err);

/* Every line of file that is not blank (trailing "\r" removed), in order. */
int dataset_load_prompts(struct dataset *d, const char *file, uint64_t seed, struct dsr_err *err);

/* The item at stream position cursor (n must be > 0). */
const char *dataset_at(struct dataset *d, uint64_t cursor);

void dataset_free(struct dataset *d);

#endif
