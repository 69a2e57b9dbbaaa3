/* Bounded exponential backoff around a client call.
 *
 * Only failures dsr_call_err_retryable() accepts (transport errors,
 * timeouts, 5xx) are retried; anything else returns at once.  The clock is
 * injectable so the schedule can be tested without sleeping. */
#ifndef DSR_TRAIN_RETRY_H
#define DSR_TRAIN_RETRY_H

#include "dsr_client.h"

struct retry_policy {
    int max_attempts;   /* total tries, >= 1 */
    double base_delay_s;  /* delay before the 2nd try; doubles each time */
    double max_delay_s;   /* cap on one delay */
    double max_total_s;   /* give up when the next delay would end past this since the first try */
};

struct retry_clock {
    double (*now)(void *ctx);            /* seconds, monotonic */
    void (*sleep)(void *ctx, double s);
    void *ctx;
};

/* The real monotonic clock and nanosleep. */
void retry_clock_system(struct retry_clock *c);

/* One attempt: returns 0 on success, -1 with e filled. attempt counts from 0. */
typedef int (*retry_fn)(void *ctx, int attempt, struct dsr_call_err *e);

/* Called before each delay (may be NULL): what failed and how long we wait. */
typedef void (*retry_notify_fn)(void *ctx, int attempt, double delay_s, const struct dsr_call_err *e);

/* Delay before try number `attempt` (1 = first retry). */
double retry_delay(const struct retry_policy *p, int attempt);

/* Runs fn until it succeeds, fails non-retryably, or the policy is spent.
 * Returns 0 or -1 (e holds the last failure); *attempts_out (may be NULL)
 * receives the number of tries made. */
int retry_run(const struct retry_policy *p, const struct retry_clock *clock, retry_fn fn, void *ctx,
              retry_notify_fn notify, void *notify_ctx, int *attempts_out, struct dsr_call_err *e);

#endif
