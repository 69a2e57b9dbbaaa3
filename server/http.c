/* libmicrohttpd glue: body accumulation under --max-body, request ids,
 * auth, routing, one log line and one metrics observation per request.
 *
 * Threads: libmicrohttpd polls every connection with epoll from a small
 * pool of network threads (HTTP_POLL_THREADS), so an open connection, idle
 * or slow, costs a socket and a little memory, never a thread.  A request
 * whose route is quick is answered right there; any other is suspended
 * (MHD_suspend_connection), handed to the request handler pool
 * (--http-threads), and resumed with its reply when the handler is done,
 * so a handler waiting minutes for the compute worker blocks no other
 * connection.  conn_guard enforces --header-timeout, which libmicrohttpd's
 * inactivity timeout (--idle-timeout) cannot. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cors.h"
#include "log.h"
#include "printable.h"
#include "routes.h"
#include "server.h"

/* Network threads of libmicrohttpd: they only move bytes and answer quick
 * routes, so a few are plenty. */
#define HTTP_POLL_THREADS 4
/* Seconds shutdown waits for requests in flight before giving up on them. */
#define DRAIN_SECONDS 60
/* File descriptors kept for everything but client connections. */
#define FD_RESERVE 64

/* One request, from its headers to its completion. */
/* CORS headers of one reply: the origin to name (NULL: none) and, for a
 * preflight, the methods of the path. */
struct cors_reply {
    const char *origin;
    char methods[128];
};

struct conn {
    char *body;
    size_t len, cap;
    bool too_large;
    double t0;
    /* handed to the handler pool: set on the network thread before the
     * suspend, read there again only after the handler's resume */
    bool dispatched;
    struct server *s;
    struct MHD_Connection *c;
    const struct route *rt;
    const char *method, *url; /* libmicrohttpd's, valid until the request completes */
    const char *if_none_match; /* the If-None-Match header (libmicrohttpd's) or NULL */
    char id[129];
    struct reply out;
    struct pool_task task;
    struct cors_reply cors; /* the origin to name in the reply, preflight methods */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void reply_json(struct reply *out, int status, json_t *body) {
    out->status = status;
    out->json = body;
}

void reply_error(struct reply *out, const struct proto_error *e) {
    json_decref(out->json);
    out->status = e->code;
    out->json = proto_error_json(e);
}

void reply_errorf(struct reply *out, int code, const char *param, const char *fmt, ...) {
    struct proto_error e;
    e.code = code;
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    reply_error(out, &e);
}

/* Compares in time independent of where the strings differ. */
static bool key_equal(const char *given, size_t a, const char *want) {
    size_t b = strlen(want);
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++) diff |= (unsigned char)(given[i < a ? i : 0] ^ want[i]) | (unsigned char)(i >= a);
    return diff == 0;
}

static bool blank(char ch) { return ch == ' ' || ch == '\t'; }

/* The credentials of "Authorization: Bearer <token>" (RFC 7235: the scheme
 * is case-insensitive, one or more spaces follow it; surrounding blanks do
 * not count); NULL when the header is not that. */
static const char *bearer_token(const char *h, size_t *len) {
    if (!h) return NULL;
    while (blank(*h)) h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || !blank(h[6])) return NULL;
    h += 6;
    while (blank(*h)) h++;
    size_t n = strlen(h);
    while (n > 0 && blank(h[n - 1])) n--;
    *len = n;
    return n ? h : NULL;
}

/* 0 when allowed; else fills out with 401. */
static int check_auth(struct server *s, struct MHD_Connection *c, enum route_auth auth, struct reply *out) {
    const char *key = auth == AUTH_NONE ? NULL
                      : auth == AUTH_ADMIN && s->cfg->admin_key ? s->cfg->admin_key
                                                                : s->cfg->api_key;
    if (!key) return 0;
    size_t len = 0;
    const char *token = bearer_token(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), &len);
    if (!token) {
        reply_errorf(out, 401, NULL, "missing 'Authorization: Bearer <%s key>'", auth == AUTH_ADMIN ? "admin" : "api");
        return -1;
    }
    if (!key_equal(token, len, key)) {
        reply_errorf(out, 401, NULL, "wrong %s key", auth == AUTH_ADMIN && s->cfg->admin_key ? "admin" : "api");
        return -1;
    }
    return 0;
}

/* Whether a request body labelled `type` may be decoded as JSON: no label
 * (many clients send none), application/json or any +json type, with or
 * without parameters.  Anything else, e.g. the form encoding `curl -d`
 * sends by default, is refused rather than guessed at. */
static bool json_media_type(const char *type) {
    if (!type) return true;
    while (blank(*type)) type++;
    size_t n = strcspn(type, ";");
    while (n > 0 && blank(type[n - 1])) n--;
    if (n == 0) return true;
    if (n == 16 && strncasecmp(type, "application/json", 16) == 0) return true;
    return n > 5 && strncasecmp(type + n - 5, "+json", 5) == 0 && strncasecmp(type, "application/", 12) == 0;
}

/* X-Request-Id when it is short printable ASCII, else a new UUID. */
static void request_id(struct MHD_Connection *c, char *id, size_t size) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    bool ok = h && h[0] && strlen(h) < size;
    for (const char *p = h; ok && *p; p++) ok = *p > 32 && *p < 127;
    if (ok) {
        snprintf(id, size, "%s", h);
        return;
    }
    uuid_t u;
    uuid_generate_random(u);
    char text[37];
    uuid_unparse_lower(u, text);
    snprintf(id, size, "%s", text);
}

static void add_cors_headers(struct MHD_Response *resp, const struct cors_reply *cors) {
    if (!cors->origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", cors->origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id");
    if (!cors->methods[0]) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", cors->methods);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
}

/* Sends r with the headers its status calls for: 401 WWW-Authenticate
 * (RFC 7235), 405 Allow (RFC 9110), 503 Retry-After; and CORS's. */
static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r, const char *id, const char *url,
                                  const struct cors_reply *cors) {
    char *body = r->text;
    size_t len;
    if (r->json) {
        body = json_dumps(r->json, JSON_COMPACT);
        if (!body) {
            r->status = 500;
            body = strdup("{\"error\":{\"code\":500,\"type\":\"internal\",\"message\":\"cannot encode the response\","
                          "\"param\":null}}");
        }
        r->content_type = "application/json";
    }
    r->text = NULL;
    if (!body) return MHD_NO;
    len = strlen(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ? r->content_type : "text/plain");
    MHD_add_response_header(resp, "X-Request-Id", id);
    for (int i = 0; i + 1 < REPLY_MAX_HEADERS && r->headers[i]; i += 2)
        MHD_add_response_header(resp, r->headers[i], r->headers[i + 1]);
    add_cors_headers(resp, cors);
    if (r->status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"dsrd\"");
    if (r->status == 405) {
        char allow[64];
        routes_allowed(url, allow, sizeof allow);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (r->status == 503) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", r->retry_after > 0 ? r->retry_after : 1);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The answer when the request cannot reach its handler (404, 405, 401,
 * 413, 503); NULL route and out filled then. */
static const struct route *admit(struct server *s, struct MHD_Connection *c, struct conn *st, const char *method,
                                 const char *url, struct reply *out) {
    bool path_known;
    /* a browser's preflight carries no credentials: answered before auth */
    if (st->cors.origin && strcmp(method, "OPTIONS") == 0 &&
        cors_methods(url, st->cors.methods, sizeof st->cors.methods)) {
        out->status = 204;
        out->text = strdup("");
        return NULL;
    }
    const struct route *rt = routes_find(method, url, &path_known);
    if (!rt) {
        if (path_known) reply_errorf(out, 405, NULL, "method %s is not allowed on %s", method, url);
        else reply_errorf(out, 404, NULL, "no route %s %s", method, url);
        return NULL;
    }
    if (check_auth(s, c, rt->auth, out)) return NULL;
    if (st->too_large) {
        reply_errorf(out, 413, NULL, "request body over --max-body (%zu bytes)", s->cfg->max_body);
        return NULL;
    }
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (strcmp(method, "POST") == 0 && !json_media_type(type)) {
        char safe[128];
        printable_ascii(type, safe, sizeof safe);
        reply_errorf(out, 415, NULL, "Content-Type %s is not JSON: send application/json", safe);
        return NULL;
    }
    if (atomic_load(&s->draining)) {
        reply_errorf(out, 503, NULL, "the server is shutting down");
        return NULL;
    }
    return rt;
}

static void run_route(struct server *s, struct conn *st) {
    struct request rq = {st->id, st->method, st->url, st->body ? st->body : "", st->len, st->if_none_match};
    st->rt->fn(s, &rq, &st->out);
    if (!st->out.json && !st->out.text) reply_errorf(&st->out, 500, NULL, "out of memory building the response");
}

/* On a handler thread: runs the route, then gives the connection back to
 * its network thread, which sends the reply (st is not touched after). */
static void handle(void *arg) {
    struct conn *st = arg;
    run_route(st->s, st);
    MHD_resume_connection(st->c);
}

/* Sends st->out, records it in the metrics and the log (an error with its
 * message and param). */
static enum MHD_Result finish(struct server *s, struct MHD_Connection *c, struct conn *st) {
    json_t *e = json_object_get(st->out.json, "error");
    char message[PROTO_MSG_MAX] = "", param[PROTO_PARAM_MAX] = "";
    bool has_error = st->out.status >= 400 && e;
    const char *m = has_error ? json_string_value(json_object_get(e, "message")) : NULL;
    const char *p = has_error ? json_string_value(json_object_get(e, "param")) : NULL;
    snprintf(message, sizeof message, "%s", m ? m : "");
    snprintf(param, sizeof param, "%s", p ? p : "");
    enum MHD_Result ret = send_reply(c, &st->out, st->id, st->url, &st->cors);
    double dt = now_s() - st->t0;
    metrics_observe(&s->metrics, st->rt ? st->rt->path : "other", st->out.status, dt);
    struct log_error le = {message, param[0] ? param : NULL};
    log_request(s->cfg->log_format, st->id, st->method, st->url, st->out.status, dt, has_error ? &le : NULL);
    json_decref(st->out.json);
    free(st->out.text);
    st->out = (struct reply){0};
    return ret;
}

/* The connection's guard record, or NULL. */
static struct guarded *guard_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    struct server *s = cls;
    struct conn *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st))) return MHD_NO;
        st->t0 = now_s();
        st->s = s;
        st->c = c;
        st->method = method;
        st->url = url;
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = st;
        struct guarded *g = guard_of(c);
        if (g) conn_guard_request(&s->guard, g, true);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg->max_body) st->too_large = true;
        return MHD_YES;
    }
    if (st->dispatched) return finish(s, c, st); /* resumed: the handler has replied */
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large || st->len + n > s->cfg->max_body) { /* keep reading, answer 413 at the end */
            st->too_large = true;
            free(st->body);
            st->body = NULL;
            st->len = st->cap = 0;
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = (st->len + n + 1) * 2;
            if (cap > s->cfg->max_body + 1) cap = s->cfg->max_body + 1;
            char *p = realloc(st->body, cap);
            if (!p) return MHD_NO;
            st->body = p;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = 0;
        return MHD_YES;
    }
    request_id(c, st->id, sizeof st->id);
    st->if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    st->cors.origin = cors_allowed_origin(s->cfg->allowed_origins,
                                          MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
    st->rt = admit(s, c, st, method, url, &st->out);
    if (st->rt && !st->rt->quick) {
        st->dispatched = true;
        st->task = (struct pool_task){handle, st, NULL};
        MHD_suspend_connection(c);
        pool_submit(&s->handlers, &st->task);
        return MHD_YES;
    }
    if (st->rt) run_route(s, st);
    return finish(s, c, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    struct server *s = cls;
    struct conn *st = *con_cls;
    if (!st) return;
    struct guarded *g = guard_of(c);
    if (g) conn_guard_request(&s->guard, g, false);
    free(st->body);
    json_decref(st->out.json);
    free(st->out.text);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* Registers connections with the header-deadline guard. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    struct server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? conn_guard_add(&s->guard, ci->connect_fd) : NULL;
    } else if (*socket_context) {
        conn_guard_remove(&s->guard, *socket_context); /* before libmicrohttpd closes the fd */
        *socket_context = NULL;
    }
}

/* libmicrohttpd's error messages, through dsrd's log (JSON lines stay JSON). */
/* libmicrohttpd's unescaping turns "%00" into a NUL that ends the path
 * early, so "/health%00x" would be served as "/health".  A URI holding an
 * escaped NUL is left escaped instead: no route or file has such a name,
 * so it is a 404. */
static size_t unescape_uri(void *cls, struct MHD_Connection *c, char *uri) {
    (void)cls, (void)c;
    for (const char *p = uri; (p = strchr(p, '%')) != NULL; p++)
        if (p[1] == '0' && p[2] == '0') return strlen(uri);
    return MHD_http_unescape(uri);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    const struct server *s = cls;
    log_warning_v(s->cfg->log_format, fmt, ap);
}

/* --max-connections within the open-files limit (main raises it as far as
 * allowed): past it accept() fails and libmicrohttpd spins on the backlog. */
static unsigned connection_limit(const struct dsrd_config *cfg) {
    struct rlimit rl;
    unsigned limit = (unsigned)cfg->max_connections;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)limit + FD_RESERVE) {
        unsigned capped = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)rl.rlim_cur - FD_RESERVE : FD_RESERVE;
        log_info(cfg->log_format, "warning: --max-connections %u lowered to %u by the open-files limit (ulimit -n %lu)",
                 limit, capped, (unsigned long)rl.rlim_cur);
        limit = capped;
    }
    return limit;
}

int server_start(struct server *s, const struct dsrd_config *cfg, struct dsr_err *err) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->draining, false);
    atomic_init(&s->seed_counter, (unsigned long long)time(NULL) * 0x9E3779B97F4A7C15ull);
    struct timespec start;
    clock_gettime(CLOCK_REALTIME, &start);
    s->start_time = (double)start.tv_sec + start.tv_nsec * 1e-9;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1)
        return dsr_errf(err, "--host %s is not an IPv4 address", cfg->host);
    metrics_init(&s->metrics);
    if (idem_init(&s->idem, cfg->idempotency_records, err)) goto fail_metrics;
    if (worker_start(&s->worker, cfg, &s->metrics, &s->idem, err)) goto fail_idem;
    if (pool_start(&s->handlers, cfg->http_threads, err)) goto fail_worker;
    if (conn_guard_start(&s->guard, cfg->header_timeout, err)) goto fail_pool;
    /* the logger first: libmicrohttpd warns about any option before it */
    s->mhd = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, (uint16_t)cfg->port, NULL, NULL,
        on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_POLL_THREADS,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit(cfg), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_uri, NULL, MHD_OPTION_END);
    if (!s->mhd) {
        dsr_errf(err, "cannot listen on %s:%d (in use, or no permission)", cfg->host, cfg->port);
        goto fail_guard;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return 0;
fail_guard:
    conn_guard_stop(&s->guard);
fail_pool:
    pool_stop(&s->handlers);
fail_worker:
    worker_stop(&s->worker);
fail_idem:
    idem_destroy(&s->idem);
fail_metrics:
    metrics_destroy(&s->metrics);
    return -1;
}

int server_stop(struct server *s) {
    atomic_store(&s->draining, true);
    MHD_quiesce_daemon(s->mhd); /* stop accepting; requests in flight go on, new ones on open connections get 503 */
    /* by the clock: on a starved machine each usleep can take far longer than asked */
    double deadline = now_s() + DRAIN_SECONDS;
    while (atomic_load(&s->in_flight) > 0 && now_s() < deadline) usleep(10000);
    int left = atomic_load(&s->in_flight);
    if (left > 0) {
        /* a request stuck beyond any timeout: its connection is suspended or
         * its handler blocked, and stopping libmicrohttpd or joining the
         * handlers would wait for it forever; the process exits instead */
        log_info(s->cfg->log_format, "warning: %d request(s) still running after %d s; exiting without them", left,
                 DRAIN_SECONDS);
        return -1;
    }
    MHD_stop_daemon(s->mhd);
    conn_guard_stop(&s->guard);
    pool_stop(&s->handlers);
    worker_stop(&s->worker);
    idem_destroy(&s->idem);
    metrics_destroy(&s->metrics);
    return 0;
}
