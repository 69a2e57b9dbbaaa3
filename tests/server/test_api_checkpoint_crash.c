/* dsrd killed (SIGKILL) while it writes a checkpoint: the half-written
 * directory it leaves behind is removed when a dsrd starts on the same
 * --checkpoint-dir, is refused by /reload while it exists, and no name sent
 * to /checkpoint can create or overwrite one.  The kill lands inside the
 * write: the test watches the directory with inotify and kills dsrd as the
 * temporary directory appears. */
#include <curl/curl.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"

struct crash_test {
    struct th t;
    const char *argv0;
    char dir[64];       /* --checkpoint-dir of the killed daemon */
    char other[64];     /* --checkpoint-dir of a second daemon, for /reload of a copied leftover */
    char leftover[256]; /* name of what the killed write left behind, "" when none */
};

struct ckpt_call {
    struct dsrd_proc *p;
    const char *name;
};

static void *post_checkpoint(void *arg) {
    struct ckpt_call *c = arg;
    struct http_resp r;
    http_post_json(c->p, "/checkpoint", json_pack("{s:s}", "name", c->name), NULL, &r);
    http_resp_free(&r);
    return NULL;
}

/* The first entry of dir other than `final`, into out ("" when none). */
static void find_leftover(const char *dir, const char *final, char *out, size_t size) {
    out[0] = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, final)) {
            snprintf(out, size, "%s", e->d_name);
            break;
        }
    closedir(d);
}

static const char *const ARGS_FMT[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--checkpoint-dir"};

static int start(struct crash_test *a, struct dsrd_proc *p, const char *dir) {
    const char *args[10];
    for (int i = 0; i < 7; i++) args[i] = ARGS_FMT[i];
    args[7] = dir;
    args[8] = NULL;
    return dsrd_start(p, a->argv0, args);
}

/* One try: start dsrd, take a step (so the checkpoint has optimizer
 * state), start /checkpoint and SIGKILL dsrd when the first directory
 * entry is created.  True when the write was cut short. */
static bool kill_during_checkpoint(struct th *t, struct crash_test *a, int attempt) {
    struct dsrd_proc p;
    if (!TH_CHECK(t, start(a, &p, a->dir) == 0, "dsrd starts (log %s)", p.log_path)) return false;
    struct http_resp r;
    http_post_json(&p, "/update",
                   json_pack("{s:[{s:s,s:{s:[i,i,i]},s:{s:[i,i]},s:f}],s:{s:f}}", "samples", "task", "understanding",
                             "context", "tokens", 256, 10, 11, "completion", "tokens", 12, 13, "advantage", 1.0, "hyper",
                             "lr", 1e-3),
                   NULL, &r);
    TH_CHECK(t, r.status == 200, "update: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    int in = inotify_init1(IN_CLOEXEC);
    if (!TH_CHECK(t, in >= 0 && inotify_add_watch(in, a->dir, IN_CREATE) >= 0, "inotify on %s", a->dir)) return false;
    char name[32];
    snprintf(name, sizeof name, "ck-%d", attempt);
    struct ckpt_call call = {&p, name};
    pthread_t th;
    pthread_create(&th, NULL, post_checkpoint, &call);
    struct pollfd pfd = {in, POLLIN, 0};
    bool seen = poll(&pfd, 1, 30000) == 1;
    kill(p.pid, SIGKILL);
    int st;
    waitpid(p.pid, &st, 0);
    close(in);
    pthread_join(th, NULL);
    unlink(p.log_path);
    if (!TH_CHECK(t, seen, "no directory entry appeared within 30 s of /checkpoint")) return false;
    find_leftover(a->dir, name, a->leftover, sizeof a->leftover);
    return a->leftover[0] != 0;
}

static void test_killed_checkpoint(struct th *t) {
    struct crash_test *a = (struct crash_test *)t;
    bool cut = false;
    for (int attempt = 0; attempt < 10 && !cut; attempt++) cut = kill_during_checkpoint(t, a, attempt);
    if (!TH_CHECK(t, cut, "no try killed dsrd inside a checkpoint write")) return;
    printf("  SIGKILL during /checkpoint left %s/%s\n", a->dir, a->leftover);

    /* while it exists it is never reloadable: copied under a running
     * daemon's --checkpoint-dir (after its start-up clean-up) */
    struct dsrd_proc q;
    if (TH_CHECK(t, start(a, &q, a->other) == 0, "second dsrd starts")) {
        char cmd[640];
        snprintf(cmd, sizeof cmd, "cp -r '%s/%s' '%s/'", a->dir, a->leftover, a->other);
        TH_CHECK(t, system(cmd) == 0, "%s", cmd);
        struct http_resp r;
        http_post_json(&q, "/reload", json_pack("{s:s}", "path", a->leftover), NULL, &r);
        TH_CHECK(t, r.status == 400 || r.status == 404, "/reload of the leftover %s: %ld %s", a->leftover, r.status,
                 r.body ? r.body : "");
        http_resp_free(&r);
        /* and /checkpoint cannot make such a name */
        http_post_json(&q, "/checkpoint", json_pack("{s:s}", "name", a->leftover), NULL, &r);
        TH_CHECK(t, r.status == 400, "/checkpoint named %s: %ld %s", a->leftover, r.status, r.body ? r.body : "");
        http_resp_free(&r);
        TH_CHECK(t, dsrd_stop(&q) == 0, "second dsrd exits cleanly");
    }

    /* a daemon starting on the directory removes it */
    struct dsrd_proc p;
    if (!TH_CHECK(t, start(a, &p, a->dir) == 0, "dsrd restarts on %s", a->dir)) return;
    char path[384];
    snprintf(path, sizeof path, "%s/%s", a->dir, a->leftover);
    TH_CHECK(t, access(path, F_OK) != 0, "after a restart %s is still there", path);
    /* what remains are complete checkpoints (of tries that were too late) */
    DIR *d = opendir(a->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct http_resp r;
        http_post_json(&p, "/reload", json_pack("{s:s}", "path", e->d_name), NULL, &r);
        TH_CHECK(t, r.status == 200, "remaining %s is a complete checkpoint: %ld %s", e->d_name, r.status,
                 r.body ? r.body : "");
        http_resp_free(&r);
    }
    if (d) closedir(d);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct crash_test a = {.argv0 = argv[0]};
    snprintf(a.dir, sizeof a.dir, "/tmp/dsr-api-crash-XXXXXX");
    snprintf(a.other, sizeof a.other, "/tmp/dsr-api-crash2-XXXXXX");
    if (!mkdtemp(a.dir) || !mkdtemp(a.other)) return 1;
    th_run(&a.t, "killed_checkpoint", test_killed_checkpoint);
    char cmd[192];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", a.dir, a.other);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", a.dir);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_checkpoint_crash");
}
