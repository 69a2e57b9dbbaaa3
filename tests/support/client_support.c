#define _XOPEN_SOURCE 700 /* nftw */
#include "client_support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsr_client.h"
#include "harness.h"
#include "image/png_io.h"
#include "base/rng.h"

void cs_init(void) { signal(SIGPIPE, SIG_IGN); }

int cs_tmpdir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/dsr-client-test-XXXXXX");
    return mkdtemp(buf) ? 0 : -1;
}

int cs_path(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void cs_rmtree(const char *dir) {
    if (strncmp(dir, "/tmp/dsr-client-test-", 21) != 0) return; /* only what cs_tmpdir made */
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int cs_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Forks BUILD/prog with args; the child's stdout goes to out_path and its
 * stderr to err_path (either may equal the other; append when append != 0). */
static pid_t spawn_redirected(const char *prog, const char *const *args, const char *out_path, const char *err_path,
                              int append) {
    char path[4096];
    if (th_build_program(prog, path, sizeof path)) return -1;
    const char *argv[64];
    int n = 0;
    argv[n++] = path;
    for (; args && *args && n < 63; args++) argv[n++] = *args;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
        int fo = open(out_path, flags, 0644);
        int fe = strcmp(out_path, err_path) == 0 ? fo : open(err_path, flags, 0644);
        if (fo >= 0) dup2(fo, 1);
        if (fe >= 0) dup2(fe, 2);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

pid_t cs_spawn(const char *prog, const char *const *args, const char *log_path) {
    return spawn_redirected(prog, args, log_path, log_path, 1);
}

int cs_wait(pid_t pid, double timeout_s) {
    double t0 = mono_now();
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1;
        if (timeout_s > 0 && mono_now() - t0 > timeout_s) {
            fprintf(stderr, "cs_wait: pid %d ran past %.0f s, killing it\n", (int)pid, timeout_s);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(20000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int cs_run(const char *prog, const char *const *args, char **out, char **err, double timeout_s) {
    char dir[256];
    if (cs_tmpdir(dir, sizeof dir) != 0) return -1;
    char out_path[300], err_path[300];
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    snprintf(err_path, sizeof err_path, "%s/err", dir);
    pid_t pid = spawn_redirected(prog, args, out_path, err_path, 0);
    int rc = pid > 0 ? cs_wait(pid, timeout_s) : -1;
    if (out) *out = th_read_file(out_path, NULL);
    if (err) *err = th_read_file(err_path, NULL);
    cs_rmtree(dir);
    return rc;
}

int cs_dsrd_start(struct dsrd_proc *p, int port, const char *ckpt_dir, const char *log_path,
                  const char *const *extra) {
    memset(p, 0, sizeof *p);
    p->port = port > 0 ? port : cs_free_port();
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", p->port);
    snprintf(p->log_path, sizeof p->log_path, "%s", log_path);
    if (ckpt_dir) snprintf(p->ckpt_dir, sizeof p->ckpt_dir, "%s", ckpt_dir);
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", p->port);
    const char *args[48] = {"--model", "tests/fixtures/janus-tiny", "--boi-id", "259", "--eoi-id", "260",
                            "--port", port_s, "--threads", "1"};
    int n = 10;
    if (ckpt_dir) {
        args[n++] = "--checkpoint-dir";
        args[n++] = ckpt_dir;
    }
    for (; extra && *extra && n < 46; extra++) args[n++] = *extra;
    args[n] = NULL;
    p->pid = cs_spawn("dsrd", args, log_path);
    if (p->pid <= 0) return -1;
    struct dsr_client_opts o = {p->url, NULL, NULL, 2000, 500};
    struct dsr_call_err e;
    struct dsr_client *c = dsr_client_new(&o, &e);
    double t0 = mono_now();
    while (mono_now() - t0 < 60.0) {
        json_t *h;
        if (dsr_health(c, &h, &e) == 0) {
            json_decref(h);
            dsr_client_free(c);
            return 0;
        }
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            fprintf(stderr, "dsrd exited at start-up; see %s\n", log_path);
            p->pid = 0;
            dsr_client_free(c);
            return -1;
        }
        usleep(50000);
    }
    dsr_client_free(c);
    fprintf(stderr, "dsrd on port %d not healthy after 60 s; see %s\n", p->port, log_path);
    cs_dsrd_kill(p);
    return -1;
}

void cs_dsrd_kill(struct dsrd_proc *p) {
    if (p->pid <= 0) return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

void cs_dsrd_stop(struct dsrd_proc *p) {
    if (p->pid <= 0) return;
    kill(p->pid, SIGTERM);
    if (cs_wait(p->pid, 10.0) < -1) return;
    p->pid = 0;
}

int cs_write_png(const char *path, int w, int h, uint32_t seed) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return -1;
    struct dsr_rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) rgb[i] = (uint8_t)(rng_next_u64(&r) >> 56);
    uint8_t color[3] = {(uint8_t)(seed * 97), (uint8_t)(seed * 31 + 80), (uint8_t)(seed * 13 + 160)};
    for (int y = h / 4; y < 3 * h / 4; y++)
        for (int x = w / 4; x < 3 * w / 4; x++) memcpy(rgb + ((size_t)y * w + x) * 3, color, 3);
    uint8_t *png = NULL;
    size_t n = 0;
    struct dsr_err err;
    int rc = png_encode_rgb8(rgb, w, h, &png, &n, &err);
    free(rgb);
    if (rc != 0) return -1;
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(png, 1, n, f) == n;
    if (f) ok = fclose(f) == 0 && ok;
    free(png);
    return ok ? 0 : -1;
}


double cs_metric_sum(const char *text, const char *prefix) {
    double sum = 0;
    size_t plen = strlen(prefix);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (strncmp(line, prefix, plen) == 0) {
            const char *sp = line;
            const char *stop = end ? end : line + strlen(line);
            const char *last_space = NULL;
            for (; sp < stop; sp++)
                if (*sp == ' ') last_space = sp;
            if (last_space) sum += strtod(last_space + 1, NULL);
        }
        line = end ? end + 1 : NULL;
    }
    return sum;
}

void cs_run_test(struct th *t, const char *name, void (*fn)(struct th *t, void *ctx), void *ctx) {
    t->current = name;
    t->current_failed = 0;
    fn(t, ctx);
    if (t->current_failed) {
        t->failed++;
        printf("FAIL %s\n", name);
    } else {
        t->passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

int cs_parse_train_config(struct train_config *c, const char *const *args, struct dsr_err *err) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)"dsr-train";
    for (; *args && n < 31; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    train_config_defaults(c);
    FILE *sink = fopen("/dev/null", "w");
    int rc = train_config_parse(c, n, argv, sink, err);
    if (sink) fclose(sink);
    return rc;
}
