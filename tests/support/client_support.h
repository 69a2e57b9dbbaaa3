/* Support for the client tests (tests/test_client*.c): real dsrd processes
 * on free local ports, running the dsr / dsr-train programs, scratch
 * directories and small PNGs.
 *
 * Programs are taken from the build directory of the test binary itself
 * (build/ or build/asan/), so the ASan suite exercises ASan programs. */
#ifndef DSR_CLIENT_SUPPORT_H
#define DSR_CLIENT_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "train_config.h"

struct dsrd_proc {
    pid_t pid;
    int port;
    char url[64];
    char log_path[512];
    char ckpt_dir[512];
};

/* Once at start: SIGPIPE ignored (a test may write to a closed socket).
 * Programs are spawned from the build directory of the test binary itself
 * ("build" or "build/asan"), so the ASan run tests the ASan programs. */
void cs_init(void);

/* dsr-train's flags: defaults, then args (NULL-terminated, without the
 * program name) parsed as dsr-train would; usage text goes nowhere. */
int cs_parse_train_config(struct train_config *c, const char *const *args, struct dsr_err *err);

/* A fresh scratch directory under /tmp (path into buf). */
int cs_tmpdir(char *buf, size_t size);
/* buf = dir + "/" + name; -1 when it does not fit. */
int cs_path(char *buf, size_t size, const char *dir, const char *name);

/* rm -rf of a scratch directory made by cs_tmpdir. */
void cs_rmtree(const char *dir);

/* A port nobody listens on right now. */
int cs_free_port(void);

/* Starts dsrd on the janus-tiny fixture (--boi-id 259 --eoi-id 260) on
 * port (0 = a free one) with --checkpoint-dir ckpt_dir (may be NULL) and the
 * extra arguments (NULL-terminated, may be NULL); waits until /health
 * answers 200.  Returns 0, or -1 after printing why. */
int cs_dsrd_start(struct dsrd_proc *p, int port, const char *ckpt_dir, const char *log_path,
                  const char *const *extra);
void cs_dsrd_kill(struct dsrd_proc *p);  /* SIGKILL and reap */
void cs_dsrd_stop(struct dsrd_proc *p);  /* SIGTERM, then SIGKILL after 10 s */

/* Runs build_dir/<prog> with args (NULL-terminated, argv[0] excluded);
 * stdout and stderr are captured into *out and *err (malloc'ed, caller
 * frees; may be NULL to discard).  Returns the exit status, or -1 when it
 * died by a signal.  timeout_s > 0 kills it after that long. */
int cs_run(const char *prog, const char *const *args, char **out, char **err, double timeout_s);

/* Starts a program in the background with output into log_path. */
pid_t cs_spawn(const char *prog, const char *const *args, const char *log_path);
/* Waits for pid; exit status or -1 (signal / timeout, after killing it). */
int cs_wait(pid_t pid, double timeout_s);

/* Writes a w x h RGB PNG of seeded noise with a coloured square. */
int cs_write_png(const char *path, int w, int h, uint32_t seed);

/* Value of a Prometheus counter line's sum over the series whose line
 * starts with prefix (e.g. "dsr_requests_total{endpoint=\"/rollout\""). */
double cs_metric_sum(const char *text, const char *prefix);

/* th_run with a context pointer (a daemon shared by several tests). */
struct th;
void cs_run_test(struct th *t, const char *name, void (*fn)(struct th *t, void *ctx), void *ctx);

#endif
