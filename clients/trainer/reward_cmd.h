/* --reward command: an external grader process as the reward.
 *
 * The command is started once (/bin/sh -c) and kept running.  For each
 * rollout we write one JSON line to its stdin and read one JSON line back:
 *
 *   request  {"task": "understanding"|"generation", "image": "/abs/path.png", "caption": "TEXT"}
 *   reply    {"reward": NUMBER}  or  {"pass": true|false}   (1.0 / 0.0)
 *
 * "reward" wins when both are given; other fields are ignored, so
 * `dsr world grade --batch` ({"pass": BOOL, "parsed": ..., "detected": ...})
 * is a grader as it is.  {"error": ...}, a malformed line, no answer within
 * the timeout or the grader's exit is an error (the trainer stops). */
#ifndef DSR_TRAIN_REWARD_CMD_H
#define DSR_TRAIN_REWARD_CMD_H

#include <stddef.h>

#include "base/error.h"
#include "subproc.h"

struct reward_cmd {
    struct subproc proc;
    const char *cmd;    /* borrowed */
    double timeout_s;   /* per reply; <= 0: no limit */
    long asked;         /* requests answered so far */
};

/* The request line (with its "\n"), malloc'ed; NULL when caption or image
 * is not UTF-8 (or out of memory). */
char *reward_request_line(const char *task, const char *image, const char *caption);

/* Reads a reward out of one reply line.  Returns 0, or -1 with a reason in
 * why (the grader's own error message for {"error": ...}). */
int reward_reply_parse(const char *line, double *reward, char *why, size_t why_size);

int reward_cmd_start(struct reward_cmd *g, const char *cmd, double timeout_s, struct dsr_err *err);

/* One request / reply.  Errors say what went wrong, not which item: the
 * caller names it. */
int reward_cmd_ask(struct reward_cmd *g, const char *task, const char *image, const char *caption, double *reward,
                   struct dsr_err *err);

/* Closes its stdin (a grader exits at end of input) and reaps it. */
void reward_cmd_stop(struct reward_cmd *g);

#endif
