#include "retry.h"

#include <time.h>

static double system_now(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void system_sleep(void *ctx, double s) {
    (void)ctx;
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void retry_clock_system(struct retry_clock *c) {
    c->now = system_now;
    c->sleep = system_sleep;
    c->ctx = NULL;
}

double retry_delay(const struct retry_policy *p, int attempt) {
    double d = p->base_delay_s;
    for (int i = 1; i < attempt && d < p->max_delay_s; i++) d *= 2.0;
    return d < p->max_delay_s ? d : p->max_delay_s;
}

int retry_run(const struct retry_policy *p, const struct retry_clock *clock, retry_fn fn, void *ctx,
              retry_notify_fn notify, void *notify_ctx, int *attempts_out, struct dsr_call_err *e) {
    double start = clock->now(clock->ctx);
    int attempt = 0;
    int rc;
    for (;;) {
        rc = fn(ctx, attempt, e);
        attempt++;
        if (rc == 0 || !dsr_call_err_retryable(e) || attempt >= p->max_attempts) break;
        double delay = retry_delay(p, attempt);
        if (clock->now(clock->ctx) + delay - start > p->max_total_s) break;
        if (notify) notify(notify_ctx, attempt, delay, e);
        clock->sleep(clock->ctx, delay);
    }
    if (attempts_out) *attempts_out = attempt;
    return rc;
}
