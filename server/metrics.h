/* Prometheus metrics of dsrd: request counts and latency histograms per
 * route and status, work counters, and gauges read at scrape time.
 * Thread-safe (one mutex); owned by the server. */
#ifndef DSRD_METRICS_H
#define DSRD_METRICS_H

#include <pthread.h>
#include <stddef.h>

#define METRICS_MAX_SERIES 128
#define METRICS_N_BUCKETS 14

enum metric_counter {
    MC_TOKENS_SCORED,    /* teacher-forced target tokens/codes */
    MC_TOKENS_GENERATED, /* sampled caption tokens */
    MC_CODES_GENERATED,  /* sampled image codes */
    MC_UPDATES_APPLIED,
    MC_SCORE_BATCHES,    /* batched scoring forwards */
    MC_SCORE_JOBS,       /* scoring requests folded into them */
    MC_N
};

/* Compute-worker job kinds, for the time spent on them (a scoring batch
 * counts once however many requests it folds). */
enum metric_job { MJ_SCORE, MJ_ROLLOUT, MJ_UPDATE, MJ_CHECKPOINT, MJ_RELOAD, MJ_N };

struct metrics_series {
    char route[48];
    int status;
    unsigned long count;
    double sum_seconds;
    unsigned long buckets[METRICS_N_BUCKETS]; /* cumulative at render time */
};

struct metrics {
    pthread_mutex_t mu;
    struct metrics_series series[METRICS_MAX_SERIES];
    int n_series;
    unsigned long counters[MC_N];
    double job_seconds[MJ_N];
    unsigned long job_count[MJ_N];
};

/* Gauges sampled by the caller when rendering. */
struct metrics_gauges {
    long queue_depth, policy_version, rollouts_cached;
    int ready;
    double start_time; /* Unix seconds */
    int model_finite;     /* 0 when a weight is NaN or infinite */
    long connections_open, header_timeouts;
};

void metrics_init(struct metrics *m);
void metrics_destroy(struct metrics *m);
void metrics_observe(struct metrics *m, const char *route, int status, double seconds);
void metrics_add(struct metrics *m, enum metric_counter c, unsigned long v);
/* One job of kind k took `seconds` of compute (rendered as the summary
 * dsr_compute_seconds{kind}: request latency minus this is the HTTP, queue
 * and encoding overhead). */
void metrics_job(struct metrics *m, enum metric_job k, double seconds);
/* Prometheus text exposition; malloc'ed, caller frees (NULL when out of memory). */
char *metrics_render(struct metrics *m, const struct metrics_gauges *g);

#endif
