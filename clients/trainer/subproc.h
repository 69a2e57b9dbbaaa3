/* A helper program run as `/bin/sh -c CMD`: the external reward grader
 * (reward_cmd.h) and the evaluation hook (eval_hook.h).
 *
 * The child runs in its own process group (so stopping it also stops what
 * the shell started), with its stdout on a pipe to us, its stdin on a pipe
 * from us or /dev/null, and our stderr.  Reads wait at most a deadline, so
 * a hung helper cannot hang the trainer.  Starting one ignores SIGPIPE for
 * the whole process: a helper that exits must be an error we report, not
 * our death.
 *
 * Ownership: a struct subproc owns its pipes and read buffer until
 * subproc_finish. */
#ifndef DSR_TRAIN_SUBPROC_H
#define DSR_TRAIN_SUBPROC_H

#include <stddef.h>
#include <sys/types.h>

#include "base/error.h"

#define SUBPROC_MAX_LINE_DEFAULT (1u << 20)

struct subproc {
    pid_t pid;        /* 0 when none is running */
    int in_fd;        /* our end of the child's stdin, or -1 */
    int out_fd;       /* our end of the child's stdout, or -1 after EOF */
    char *buf;        /* stdout bytes read ahead */
    size_t len, cap;
    size_t consumed;  /* bytes of buf taken by the last line returned */
    size_t max_line;  /* longer lines are an error (SUBPROC_MAX_LINE_DEFAULT) */
};

/* Starts `/bin/sh -c cmd`.  with_stdin: a pipe we write to (else
 * /dev/null).  env: "NAME=VALUE" strings (NULL-terminated, may be NULL)
 * set in the child's environment over ours.  Returns 0 or -1 with err. */
int subproc_start(struct subproc *p, const char *cmd, int with_stdin, const char *const *env, struct dsr_err *err);

/* Writes n bytes to the child's stdin; -1 when it is gone. */
int subproc_write(struct subproc *p, const char *data, size_t n, struct dsr_err *err);

/* Next line of the child's stdout, without its "\n" (a last line without
 * one counts), in *line: valid until the next call.  Waits at most
 * timeout_s (<= 0: no limit).  Returns 1 with a line, 0 at end of output,
 * -1 with err on timeout, read error or a line over max_line. */
int subproc_read_line(struct subproc *p, double timeout_s, char **line, struct dsr_err *err);

/* Closes our pipe ends, gives the child grace_s to exit, then kills its
 * process group.  Returns its exit status, or -1 when a signal ended it
 * (or we had to).  Safe on a struct that never started. */
int subproc_finish(struct subproc *p, double grace_s);

#endif
