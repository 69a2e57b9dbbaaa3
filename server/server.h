/* The dsrd server: HTTP front end (libmicrohttpd polling with epoll, a
 * pool of request handler threads, the header-deadline guard), the compute
 * worker, metrics.  Owned by main(). */
#ifndef DSRD_SERVER_H
#define DSRD_SERVER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "conn_guard.h"
#include "idempotency.h"
#include "metrics.h"
#include "pool.h"
#include "proto_error.h"
#include "worker.h"

struct MHD_Daemon;

struct server {
    const struct dsrd_config *cfg;
    struct worker worker;
    struct metrics metrics;
    struct idem_store idem;   /* /update responses by idempotency_key */
    struct pool handlers;     /* request handler threads (--http-threads) */
    struct conn_guard guard;  /* --header-timeout */
    struct MHD_Daemon *mhd;
    int port;                 /* bound port */
    atomic_int in_flight;     /* requests between first byte and response sent */
    atomic_bool draining;     /* shutdown begun: new requests get 503 */
    atomic_ullong seed_counter; /* default rollout seeds */
    double start_time;        /* Unix time the server started (process_start_time_seconds) */
};

/* One request as the route handlers see it. */
struct request {
    const char *id;       /* X-Request-Id (echoed or generated) */
    const char *method;
    const char *path;
    const char *body;     /* NUL-terminated copy of the body */
    size_t body_len;
    const char *if_none_match; /* If-None-Match header, or NULL (static files answer 304) */
};

#define REPLY_MAX_HEADERS 16

/* What a handler answers: a JSON body or a text body (metrics). */
struct reply {
    int status;
    json_t *json;          /* owned */
    char *text;            /* owned, malloc'ed */
    const char *content_type;
    int retry_after;       /* a 503's Retry-After in seconds (0: 1) */
    /* more headers: name, value, name, value, ... up to a NULL name; the
     * strings outlive the reply (static) */
    const char *headers[REPLY_MAX_HEADERS];
};

void reply_json(struct reply *out, int status, json_t *body);
void reply_error(struct reply *out, const struct proto_error *e);
void reply_errorf(struct reply *out, int code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int  server_start(struct server *s, const struct dsrd_config *cfg, struct dsr_err *err);
/* Stops accepting, waits for in-flight requests, stops the worker: 0.  -1
 * when requests were still running after the drain period: then nothing is
 * torn down and the caller should exit. */
int  server_stop(struct server *s);

#endif
