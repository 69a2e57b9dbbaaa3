/* --eval-cmd: an evaluation program run between training steps.
 *
 * It runs under /bin/sh -c with DSR_SERVER (the learner's URL), DSR_STEP,
 * DSR_POLICY_VERSION and, when the run has one, DSR_API_KEY in its
 * environment, stdin from /dev/null and our stderr.  The last non-empty
 * line of its stdout must be a JSON object: that object is the result.
 * Exiting non-zero, or no such line, is a failure (the trainer logs it and
 * goes on).
 *
 * Evaluations are due at step 0, at every multiple of --eval-every and at
 * the last step; eval_done remembers the steps that already have a result
 * in the JSONL log, so a --resume does not evaluate a step twice. */
#ifndef DSR_TRAIN_EVAL_HOOK_H
#define DSR_TRAIN_EVAL_HOOK_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"

/* Runs cmd for (step, policy_version).  Returns 0 with *result a NEW JSON
 * object, or -1 with the reason in err. */
int eval_hook_run(const char *cmd, const char *server, const char *api_key, long step, long policy_version,
                  json_t **result, struct dsr_err *err);

/* 1 when an evaluation is due after `step` steps of `steps`. */
int eval_due(long step, long every, long steps);

/* The steps with an {"eval": {...}, "step": n} record. */
struct eval_done {
    long *steps;
    size_t n, cap;
};

/* Reads them from a JSONL log (a missing log is an empty set; lines that
 * are not such records are skipped).  Returns -1 only when out of memory. */
int eval_done_load(struct eval_done *d, const char *log_path, struct dsr_err *err);
int eval_done_has(const struct eval_done *d, long step);
int eval_done_add(struct eval_done *d, long step);
void eval_done_free(struct eval_done *d);

#endif
