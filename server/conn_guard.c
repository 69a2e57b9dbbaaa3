#include "conn_guard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wakes every quarter of the timeout (at least every second) to look. */
static void *guard_main(void *arg) {
    struct conn_guard *g = arg;
    double period = g->header_timeout / 4 < 1 ? g->header_timeout / 4 : 1;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        double t = until.tv_sec + until.tv_nsec * 1e-9 + period;
        until.tv_sec = (time_t)t;
        until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
        int rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
        if (rc != 0 && rc != ETIMEDOUT) break;
        double now = now_s();
        /* under the lock: conn_guard_remove runs before the fd is closed,
         * so the fd cannot have been reused by another connection */
        for (struct guarded *c = g->head; c; c = c->next)
            if (!c->in_request && !c->cut && now - c->waiting_since > g->header_timeout) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
                g->cut_total++;
            }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int conn_guard_start(struct conn_guard *g, double header_timeout, struct dsr_err *err) {
    memset(g, 0, sizeof *g);
    g->header_timeout = header_timeout;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    if (pthread_create(&g->thread, NULL, guard_main, g)) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        return dsr_errf(err, "cannot start the connection guard thread");
    }
    g->started = true;
    return 0;
}

void conn_guard_stop(struct conn_guard *g) {
    if (!g->started) return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    while (g->head) {
        struct guarded *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    g->started = false;
}

struct guarded *conn_guard_add(struct conn_guard *g, int fd) {
    struct guarded *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->waiting_since = now_s();
    pthread_mutex_lock(&g->mu);
    c->next = g->head;
    if (g->head) g->head->prev = c;
    g->head = c;
    g->open++;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void conn_guard_remove(struct conn_guard *g, struct guarded *c) {
    pthread_mutex_lock(&g->mu);
    if (c->prev) c->prev->next = c->next;
    else g->head = c->next;
    if (c->next) c->next->prev = c->prev;
    g->open--;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void conn_guard_request(struct conn_guard *g, struct guarded *c, bool started) {
    pthread_mutex_lock(&g->mu);
    c->in_request = started;
    if (!started) c->waiting_since = now_s();
    pthread_mutex_unlock(&g->mu);
}

void conn_guard_counts(struct conn_guard *g, long *open, long *cut_total) {
    pthread_mutex_lock(&g->mu);
    *open = g->open;
    *cut_total = g->cut_total;
    pthread_mutex_unlock(&g->mu);
}
