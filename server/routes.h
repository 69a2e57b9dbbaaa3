/* The route table of dsrd and its handlers.  A handler runs on one of the
 * request handler threads (--http-threads): it decodes and validates the
 * body (proto/), prepares inputs (tokenize, preprocess images), hands model
 * work to the compute worker, and encodes the reply.  A quick route (no
 * body, no compute: /health, /metrics, /model) is answered on the network
 * thread directly, so it answers however busy the handlers are. */
#ifndef DSRD_ROUTES_H
#define DSRD_ROUTES_H

#include <stdbool.h>

#include "server.h"

enum route_auth { AUTH_NONE, AUTH_API, AUTH_ADMIN };

typedef void (*route_fn)(struct server *s, const struct request *rq, struct reply *out);

struct route {
    const char *method;
    const char *path;     /* exact, or ending in "{path}": any non-empty rest of the path */
    enum route_auth auth;
    route_fn fn;
    bool quick;
};

/* The route for method+path; NULL when none (path_known tells 404 from 405). */
const struct route *routes_find(const char *method, const char *path, bool *path_known);
/* The methods allowed on path, comma-separated ("GET", "POST"), for 405's Allow. */
void routes_allowed(const char *path, char *out, size_t size);
/* Every route, NULL-terminated by a {NULL} entry. */
const struct route *routes_table(void);
/* Whether the request path is one of r's. */
bool route_matches(const struct route *r, const char *path);

/* Handlers (routes_*.c). */
void route_health(struct server *s, const struct request *rq, struct reply *out);
void route_metrics(struct server *s, const struct request *rq, struct reply *out);
void route_openapi(struct server *s, const struct request *rq, struct reply *out);
void route_model(struct server *s, const struct request *rq, struct reply *out);
void route_tokenize(struct server *s, const struct request *rq, struct reply *out);
void route_detokenize(struct server *s, const struct request *rq, struct reply *out);
void route_logprobs(struct server *s, const struct request *rq, struct reply *out);
void route_score(struct server *s, const struct request *rq, struct reply *out);
void route_openrlhf(struct server *s, const struct request *rq, struct reply *out);
void route_rollout(struct server *s, const struct request *rq, struct reply *out);
void route_update(struct server *s, const struct request *rq, struct reply *out);
void route_checkpoint(struct server *s, const struct request *rq, struct reply *out);
void route_reload(struct server *s, const struct request *rq, struct reply *out);
void route_stats(struct server *s, const struct request *rq, struct reply *out);
void route_ui_index(struct server *s, const struct request *rq, struct reply *out);
void route_ui_asset(struct server *s, const struct request *rq, struct reply *out);

/* Shared by handlers: parses the JSON body (400 on malformed JSON) and
 * checks the model is ready (503); NULL after filling out on failure. */
json_t *route_body(struct server *s, const struct request *rq, struct reply *out);
struct janus_runtime *route_runtime(struct server *s, struct reply *out);

#endif
