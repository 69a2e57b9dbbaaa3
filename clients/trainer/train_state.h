/* The trainer's resumable state, saved to --state after every step.
 *
 * Written atomically (temp file in the same directory, fsync, rename, fsync
 * of the directory), so a crash leaves either the old or the new state.
 * `pending_key` is the idempotency key of an /update that was sent (or about
 * to be) but whose answer was not yet recorded: a resumed run re-sends the
 * same request with the same key, so the server applies it at most once. */
#ifndef DSR_TRAIN_STATE_H
#define DSR_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/rng.h"

#define TRAIN_KEY_MAX 64
#define TRAIN_NAME_MAX 128

struct train_state {
    long step;             /* steps completed */
    long policy_version;   /* the learner's version after `step` steps */
    uint64_t seed;         /* --seed of the run (a resume must use the same) */
    uint64_t image_cursor; /* images consumed so far (epoch = cursor / count) */
    uint64_t prompt_cursor;
    struct dsr_rng rng;    /* request seeds */
    char pending_key[TRAIN_KEY_MAX]; /* "" when no update is in flight */
    char last_checkpoint[TRAIN_NAME_MAX]; /* name under --checkpoint-dir, or "" */
    long last_checkpoint_version;         /* its policy_version, or -1 */
};

/* step 0, cursors 0, rng seeded by seed, nothing pending. */
void train_state_init(struct train_state *s, uint64_t seed, long policy_version);

int train_state_save(const struct train_state *s, const char *path, struct dsr_err *err);
int train_state_load(struct train_state *s, const char *path, struct dsr_err *err);

/* Writes len bytes to path via path.tmp + fsync + rename + directory fsync. */
int atomic_write_file(const char *path, const char *data, size_t len, struct dsr_err *err);

/* A fresh random idempotency key (UUID v4 text from /dev/urandom), so two
 * runs with the same --seed against one server never share keys. */
int train_new_key(char out[TRAIN_KEY_MAX], struct dsr_err *err);

#endif
