#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/version.h"

static const double BUCKETS[METRICS_N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1,     2.5,  5,     10,   30};

static const char *const COUNTER_NAMES[MC_N][2] = {
    {"dsr_tokens_scored_total", "Target tokens and codes scored by teacher forcing."},
    {"dsr_tokens_generated_total", "Caption tokens sampled."},
    {"dsr_codes_generated_total", "Image codes sampled."},
    {"dsr_updates_applied_total", "Optimizer steps applied."},
    {"dsr_score_batches_total", "Batched teacher-forced forwards."},
    {"dsr_score_jobs_total", "Scoring requests folded into batched forwards."},
};

static const char *const JOB_NAMES[MJ_N] = {"score", "rollout", "update", "checkpoint", "reload"};

void metrics_init(struct metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

void metrics_destroy(struct metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_observe(struct metrics *m, const char *route, int status, double seconds) {
    pthread_mutex_lock(&m->mu);
    struct metrics_series *s = NULL;
    for (int i = 0; i < m->n_series && !s; i++)
        if (m->series[i].status == status && strcmp(m->series[i].route, route) == 0) s = &m->series[i];
    if (!s && m->n_series < METRICS_MAX_SERIES) {
        s = &m->series[m->n_series++];
        snprintf(s->route, sizeof s->route, "%s", route);
        s->status = status;
    }
    if (s) {
        s->count++;
        s->sum_seconds += seconds;
        for (int b = 0; b < METRICS_N_BUCKETS; b++)
            if (seconds <= BUCKETS[b]) {
                s->buckets[b]++;
                break;
            }
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_add(struct metrics *m, enum metric_counter c, unsigned long v) {
    pthread_mutex_lock(&m->mu);
    m->counters[c] += v;
    pthread_mutex_unlock(&m->mu);
}

void metrics_job(struct metrics *m, enum metric_job k, double seconds) {
    pthread_mutex_lock(&m->mu);
    m->job_seconds[k] += seconds;
    m->job_count[k]++;
    pthread_mutex_unlock(&m->mu);
}

/* Process resident set size in bytes (Linux /proc), 0 when unknown. */
static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * 4096;
}

struct buf {
    char *p;
    size_t n, cap;
    int failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

char *metrics_render(struct metrics *m, const struct metrics_gauges *g) {
    struct buf b = {malloc(4096), 0, 4096, 0};
    if (!b.p) return NULL;
    pthread_mutex_lock(&m->mu);
    put(&b, "# HELP dsr_requests_total HTTP requests by route and status.\n# TYPE dsr_requests_total counter\n");
    for (int i = 0; i < m->n_series; i++)
        put(&b, "dsr_requests_total{route=\"%s\",status=\"%d\"} %lu\n", m->series[i].route, m->series[i].status,
            m->series[i].count);
    put(&b, "# HELP dsr_request_seconds Request latency by route and status.\n"
            "# TYPE dsr_request_seconds histogram\n");
    for (int i = 0; i < m->n_series; i++) {
        const struct metrics_series *s = &m->series[i];
        unsigned long cum = 0;
        for (int k = 0; k < METRICS_N_BUCKETS; k++) {
            cum += s->buckets[k];
            put(&b, "dsr_request_seconds_bucket{route=\"%s\",status=\"%d\",le=\"%g\"} %lu\n", s->route, s->status,
                BUCKETS[k], cum);
        }
        put(&b, "dsr_request_seconds_bucket{route=\"%s\",status=\"%d\",le=\"+Inf\"} %lu\n", s->route, s->status,
            s->count);
        put(&b, "dsr_request_seconds_sum{route=\"%s\",status=\"%d\"} %.6f\n", s->route, s->status, s->sum_seconds);
        put(&b, "dsr_request_seconds_count{route=\"%s\",status=\"%d\"} %lu\n", s->route, s->status, s->count);
    }
    for (int c = 0; c < MC_N; c++)
        put(&b, "# HELP %s %s\n# TYPE %s counter\n%s %lu\n", COUNTER_NAMES[c][0], COUNTER_NAMES[c][1],
            COUNTER_NAMES[c][0], COUNTER_NAMES[c][0], m->counters[c]);
    put(&b, "# HELP dsr_compute_seconds Compute-worker time by job kind (a scoring batch counts once).\n"
            "# TYPE dsr_compute_seconds summary\n");
    for (int k = 0; k < MJ_N; k++)
        put(&b, "dsr_compute_seconds_sum{kind=\"%s\"} %.6f\ndsr_compute_seconds_count{kind=\"%s\"} %lu\n",
            JOB_NAMES[k], m->job_seconds[k], JOB_NAMES[k], m->job_count[k]);
    pthread_mutex_unlock(&m->mu);
    put(&b, "# HELP dsr_queue_depth Jobs waiting for the compute worker.\n# TYPE dsr_queue_depth gauge\n"
            "dsr_queue_depth %ld\n", g->queue_depth);
    put(&b, "# HELP dsr_policy_version Optimizer steps applied to the served weights.\n"
            "# TYPE dsr_policy_version gauge\ndsr_policy_version %ld\n", g->policy_version);
    put(&b, "# HELP dsr_rollouts_cached Rollouts remembered for /update.\n# TYPE dsr_rollouts_cached gauge\n"
            "dsr_rollouts_cached %ld\n", g->rollouts_cached);
    put(&b, "# HELP dsr_ready 1 once the model is loaded.\n# TYPE dsr_ready gauge\ndsr_ready %d\n", g->ready);
    put(&b, "# HELP dsr_model_finite 1 when every served weight is finite (0: /reload a good checkpoint).\n"
            "# TYPE dsr_model_finite gauge\ndsr_model_finite %d\n", g->model_finite);
    put(&b, "# HELP dsr_connections_open Open HTTP connections.\n# TYPE dsr_connections_open gauge\n"
            "dsr_connections_open %ld\n", g->connections_open);
    put(&b, "# HELP dsr_header_timeouts_total Connections closed for not sending a request's headers within "
            "--header-timeout.\n# TYPE dsr_header_timeouts_total counter\ndsr_header_timeouts_total %ld\n",
        g->header_timeouts);
    put(&b, "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes %ld\n", rss_bytes());
    put(&b, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
            "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n", g->start_time);
    put(&b, "# HELP dsr_build_info The dsr release and source commit of this daemon.\n# TYPE dsr_build_info gauge\n"
            "dsr_build_info{version=\"%s\",commit=\"%s\"} 1\n", dsr_version(), dsr_commit());
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
