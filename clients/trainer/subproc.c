#include "subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int name_len(const char *kv) {
    const char *eq = strchr(kv, '=');
    return eq ? (int)(eq - kv) : (int)strlen(kv);
}

/* environ without the names env sets, then env: built before fork(), so
 * the child only calls async-signal-safe functions (the trainer has threads). */
static char **build_env(const char *const *env) {
    size_t n = 0, k = 0;
    while (environ[n]) n++;
    while (env && env[k]) k++;
    char **out = malloc((n + k + 1) * sizeof *out);
    if (!out) return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        for (size_t j = 0; j < k && !overridden; j++)
            overridden = name_len(environ[i]) == name_len(env[j]) && strncmp(environ[i], env[j], (size_t)name_len(env[j])) == 0;
        if (!overridden) out[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++) out[m++] = (char *)env[j];
    out[m] = NULL;
    return out;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

int subproc_start(struct subproc *p, const char *cmd, int with_stdin, const char *const *env, struct dsr_err *err) {
    memset(p, 0, sizeof *p);
    p->in_fd = p->out_fd = -1;
    p->max_line = SUBPROC_MAX_LINE_DEFAULT;
    signal(SIGPIPE, SIG_IGN);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    char **envp = build_env(env);
    if (!envp) return dsr_errf(err, "out of memory");
    int ok = pipe(out) == 0;
    if (ok && with_stdin) ok = pipe(in) == 0;
    else if (ok) ok = (in[0] = open("/dev/null", O_RDONLY)) >= 0;
    for (int i = 0; ok && i < 2; i++) {
        if (in[i] >= 0) fcntl(in[i], F_SETFD, FD_CLOEXEC);
        fcntl(out[i], F_SETFD, FD_CLOEXEC);
    }
    pid_t pid = ok ? fork() : -1;
    if (pid == 0) {
        setpgid(0, 0);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0) _exit(127);
        char *const argv[] = {"sh", "-c", (char *)cmd, NULL};
        execve("/bin/sh", argv, envp);
        _exit(127);
    }
    int e = errno;
    free(envp);
    close_fd(&in[0]);
    close_fd(&out[1]);
    if (pid < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        return dsr_errf(err, "cannot start '%s': %s", cmd, strerror(e));
    }
    setpgid(pid, pid); /* also here: whichever runs first, the group exists before we signal it */
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    return 0;
}

int subproc_write(struct subproc *p, const char *data, size_t n, struct dsr_err *err) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = p->in_fd >= 0 ? write(p->in_fd, data + done, n - done) : -1;
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return dsr_errf(err, "cannot write to the command (it exited?): %s", strerror(errno));
        done += (size_t)w;
    }
    return 0;
}

/* Returns the line ending at buf[end] (exclusive) and marks it consumed. */
static int take_line(struct subproc *p, size_t end, size_t skip, char **line) {
    p->buf[end] = '\0';
    p->consumed = end + skip;
    *line = p->buf;
    return 1;
}

int subproc_read_line(struct subproc *p, double timeout_s, char **line, struct dsr_err *err) {
    if (p->consumed) {
        memmove(p->buf, p->buf + p->consumed, p->len - p->consumed);
        p->len -= p->consumed;
        p->consumed = 0;
    }
    double deadline = mono_now() + timeout_s;
    size_t scanned = 0;
    for (;;) {
        char *nl = p->len > scanned ? memchr(p->buf + scanned, '\n', p->len - scanned) : NULL;
        if (nl) return take_line(p, (size_t)(nl - p->buf), 1, line);
        scanned = p->len;
        if (p->len > p->max_line) return dsr_errf(err, "output line longer than %zu bytes", p->max_line);
        if (p->out_fd < 0) return p->len == 0 ? 0 : take_line(p, p->len, 0, line); /* reads leave room for the NUL */
        int wait_ms = -1;
        if (timeout_s > 0) {
            double left = deadline - mono_now();
            if (left <= 0) return dsr_errf(err, "no answer within %.0f s", timeout_s);
            wait_ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
        }
        struct pollfd pfd = {p->out_fd, POLLIN, 0};
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return dsr_errf(err, "poll: %s", strerror(errno));
        if (pr == 0) continue; /* the deadline check above reports it */
        if (p->cap - p->len < 4096) {
            size_t nc = p->cap ? p->cap * 2 : 8192;
            char *b = realloc(p->buf, nc);
            if (!b) return dsr_errf(err, "out of memory");
            p->buf = b;
            p->cap = nc;
        }
        ssize_t r = read(p->out_fd, p->buf + p->len, p->cap - p->len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return dsr_errf(err, "read: %s", strerror(errno));
        if (r == 0) close_fd(&p->out_fd);
        else p->len += (size_t)r;
    }
}

/* waitpid with a deadline; 1 when reaped (*status set). */
static int reap_within(pid_t pid, double seconds, int *status) {
    double end = mono_now() + seconds;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return r == pid;
        if (mono_now() >= end) return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int subproc_finish(struct subproc *p, double grace_s) {
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = p->consumed = 0;
    if (p->pid <= 0) return -1;
    int status = 0, killed = 0;
    if (!reap_within(p->pid, grace_s, &status)) {
        killed = 1;
        kill(-p->pid, SIGTERM);
        if (!reap_within(p->pid, 2.0, &status)) {
            kill(-p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
        }
    }
    p->pid = 0;
    return !killed && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
