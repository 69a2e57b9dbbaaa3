/* dsrd: serves a Janus model over HTTP/JSON (proto/API.md).
 * The only mutable global is the signal flag. */
#include <signal.h>
#include <stdio.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "nn/ops.h"
#include "train/checkpoint.h"
#include "config.h"
#include "log.h"
#include "routes.h"
#include "server.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv) {
    struct dsrd_config cfg;
    int rc = dsrd_config_parse(argc, argv, &cfg, stderr);
    if (rc) return rc > 0 ? 0 : 2;
    if (cfg.list_routes) {
        for (const struct route *r = routes_table(); r->path; r++) printf("%s %s\n", r->method, r->path);
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* connections are file descriptors: allow as many as the hard limit does */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

#if defined(__GLIBC__)
    /* glibc gives threads their own malloc arenas, up to 8 per core; dsrd's
     * many HTTP threads then scatter freed request buffers over all of them,
     * and under `make soak` resident memory grew 17% in 5 minutes while the
     * live heap stayed flat (malloc_stats: in use 22 → 25 MB, mapped 57 →
     * 66 MB).  One arena bounds that; the worker's periodic malloc_trim
     * returns the rest.
     * A forward's scratch (VQ activations, KV cache, logits: a few MB each)
     * must stay mapped between requests: freshly mapped pages fault in on
     * every call.  glibc's default adapts its mmap threshold to freed sizes,
     * so /score of 16 items on the default model ran at 100 or at 160-200 ms
     * depending on the history of the process; with every buffer under 32 MiB
     * from the heap and the heap kept up to 256 MiB between the periodic
     * trims it stays at 100 ms (a trim threshold alone, which pins the mmap
     * threshold at glibc's 128 KiB: 200 ms).  An operator's GLIBC_TUNABLES
     * takes precedence. */
    mallopt(M_ARENA_MAX, 1);
    if (!getenv("GLIBC_TUNABLES")) {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 256 << 20);
    }
#endif
    static struct server srv; /* large; lives for the whole run */
    struct dsr_err err = {{0}};
    /* checkpoints a crash left half-written (a live writer's are kept) */
    int removed = 0;
    if (cfg.checkpoint_dir && access(cfg.checkpoint_dir, F_OK) == 0 &&
        checkpoint_remove_partials(cfg.checkpoint_dir, &removed, &err))
        log_info(cfg.log_format, "warning: %s", err.msg);
    if (removed)
        log_info(cfg.log_format, "removed %d partial checkpoint(s) under %s", removed, cfg.checkpoint_dir);
    if (server_start(&srv, &cfg, &err)) {
        log_info(cfg.log_format, "dsrd: %s", err.msg);
        return 1;
    }
    log_info(cfg.log_format, "dsrd listening on http://%s:%d, loading %s", cfg.host, srv.port,
             cfg.model_dir ? cfg.model_dir : "the embedded default model (builtin:shapes)");
    /* libgomp reads this at load time, so it can only be advised, not set
     * here.  With OpenBLAS's pthreads build two pools share the cores and
     * spinning OpenMP threads starve its GEMMs; with its OpenMP build (what
     * the Makefile links) there is one team, and a passive one pays a
     * futex wake for every parallel region (bench/README.md, Threading). */
    const char *wait_policy = getenv("OMP_WAIT_POLICY"), *blas = dsr_blas_threading();
    bool passive = wait_policy && strcasecmp(wait_policy, "passive") == 0;
    log_info(cfg.log_format, "OpenBLAS threading: %s; kernels: %s; OMP_WAIT_POLICY=%s", blas, dsr_blas_core(),
             wait_policy ? wait_policy : "(unset)");
    if (strcmp(blas, "pthreads") == 0 && !passive)
        log_info(cfg.log_format,
                 "warning: OpenBLAS's pthreads build with spinning OpenMP threads (OMP_WAIT_POLICY is not 'passive') "
                 "slows every GEMM (decode steps up to 4x slower). Start dsrd with OMP_WAIT_POLICY=passive, or "
                 "build against OpenBLAS's OpenMP build (libopenblas-openmp-dev, as make does)");
    else if (strcmp(blas, "OpenMP") == 0 && passive)
        log_info(cfg.log_format,
                 "note: OMP_WAIT_POLICY=passive costs this build ~15-20%% of /score throughput (every parallel "
                 "region wakes sleeping threads); unset it unless other processes share these cores");
    int announced = 0;
    while (!g_stop) {
        usleep(50000);
        enum worker_state st = worker_get_state(&srv.worker);
        if (!announced && st == WORKER_READY) {
            log_info(cfg.log_format, "model ready: %s%s%s", srv.worker.rt.name,
                     srv.worker.rt.embedded ? " (builtin:random, deterministic random weights)" : "",
                     srv.worker.rt.builtin_shapes ? " (builtin:shapes, the embedded default)" : "");
            if (srv.worker.rt.builtin_eval) {
                char *scores = json_dumps(json_object_get(srv.worker.rt.builtin_eval, "summary"), JSON_COMPACT);
                log_info(cfg.log_format, "measured scores of %s (make eval-default): %s", srv.worker.rt.name,
                         scores ? scores : "{}");
                free(scores);
            }
            if (!srv.worker.rt.tok)
                log_info(cfg.log_format, "warning: no tokenizer.json, and the special ids do not fit the built-in "
                                         "byte tokenizer: token-id inputs only, text is refused (400)");
            if (!atomic_load(&srv.worker.model_finite))
                log_info(cfg.log_format, "warning: the weights are not finite (%s): /health answers 503 until a "
                                         "/reload of good weights", srv.worker.nonfinite_tensor);
            announced = 1;
        } else if (!announced && st == WORKER_FAILED) {
            log_info(cfg.log_format, "model failed to load: %s", srv.worker.load_error);
            server_stop(&srv);
            return 1;
        }
    }
    log_info(cfg.log_format, "signal received: draining in-flight requests");
    if (server_stop(&srv)) return 1;
    log_info(cfg.log_format, "dsrd stopped");
    return 0;
}
