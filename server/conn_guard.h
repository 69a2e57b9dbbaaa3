/* The header deadline of dsrd's connections.  libmicrohttpd only has an
 * inactivity timeout, which a client sending one header byte every few
 * seconds never trips; so each connection is registered here, and one
 * thread shuts down (shutdown(2), which libmicrohttpd then sees as the peer
 * leaving) any connection that has waited longer than the header timeout
 * for a request's headers: counted from the connection's start or its
 * previous response, so an idle keep-alive connection closes as late. */
#ifndef DSRD_CONN_GUARD_H
#define DSRD_CONN_GUARD_H

#include <pthread.h>
#include <stdbool.h>

#include "base/error.h"

struct guarded {
    struct guarded *prev, *next;
    int fd;
    double waiting_since; /* start of the wait for a request's headers */
    bool in_request;      /* headers received, not yet answered */
    bool cut;
};

struct conn_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct guarded *head;
    double header_timeout; /* seconds */
    long open;             /* registered connections */
    long cut_total;        /* connections shut down for their headers' lateness */
    bool stopping;
    bool started;
    pthread_t thread;
};

int  conn_guard_start(struct conn_guard *g, double header_timeout, struct dsr_err *err);
void conn_guard_stop(struct conn_guard *g);
/* A new connection on fd; NULL when out of memory (then it is not guarded). */
struct guarded *conn_guard_add(struct conn_guard *g, int fd);
/* Called before fd is closed. */
void conn_guard_remove(struct conn_guard *g, struct guarded *c);
/* A request's headers arrived / its response was sent. */
void conn_guard_request(struct conn_guard *g, struct guarded *c, bool started);
void conn_guard_counts(struct conn_guard *g, long *open, long *cut_total);

#endif
