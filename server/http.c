/* libmicrohttpd glue: body accumulation under --max-body, request ids,
 * auth, routing, one log line and one metrics observation per request. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "cors.h"
#include "log.h"
#include "routes.h"
#include "server.h"

struct conn {
    char *body;
    size_t len, cap;
    bool too_large;
    double t0;
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
static bool key_equal(const char *given, const char *want) {
    size_t a = strlen(given), b = strlen(want);
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < b; i++) diff |= (unsigned char)(given[i < a ? i : 0] ^ want[i]) | (unsigned char)(i >= a);
    return diff == 0;
}

/* 0 when allowed; else fills out with 401. */
static int check_auth(struct server *s, struct MHD_Connection *c, enum route_auth auth, struct reply *out) {
    const char *key = auth == AUTH_NONE ? NULL
                      : auth == AUTH_ADMIN && s->cfg->admin_key ? s->cfg->admin_key
                                                                : s->cfg->api_key;
    if (!key) return 0;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0) {
        reply_errorf(out, 401, NULL, "missing 'Authorization: Bearer <%s key>'", auth == AUTH_ADMIN ? "admin" : "api");
        return -1;
    }
    if (!key_equal(h + 7, key)) {
        reply_errorf(out, 401, NULL, "wrong %s key", auth == AUTH_ADMIN && s->cfg->admin_key ? "admin" : "api");
        return -1;
    }
    return 0;
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

/* CORS headers of one reply: the origin to name (NULL: none) and, for a
 * preflight, the methods of the path. */
struct cors_reply {
    const char *origin;
    char methods[128];
};

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

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r, const char *id,
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
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void dispatch(struct server *s, struct MHD_Connection *c, struct conn *st, const char *method, const char *url,
                     const char *id, struct cors_reply *cors, struct reply *out) {
    bool path_known;
    /* a browser's preflight carries no credentials: answered before auth */
    if (cors->origin && strcmp(method, "OPTIONS") == 0 && cors_methods(url, cors->methods, sizeof cors->methods)) {
        out->status = 204;
        out->text = strdup("");
        return;
    }
    const struct route *rt = routes_find(method, url, &path_known);
    if (!rt) {
        if (path_known) reply_errorf(out, 405, NULL, "method %s is not allowed on %s", method, url);
        else reply_errorf(out, 404, NULL, "no route %s %s", method, url);
        return;
    }
    if (check_auth(s, c, rt->auth, out)) return;
    if (st->too_large) {
        reply_errorf(out, 413, NULL, "request body over --max-body (%zu bytes)", s->cfg->max_body);
        return;
    }
    if (atomic_load(&s->draining)) {
        reply_errorf(out, 503, NULL, "the server is shutting down");
        return;
    }
    struct request rq = {id, method, url, st->body ? st->body : "", st->len,
                         MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH)};
    rt->fn(s, &rq, out);
    if (!out->json && !out->text) reply_errorf(out, 500, NULL, "out of memory building the response");
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
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg->max_body) st->too_large = true;
        return MHD_YES;
    }
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
    char id[129];
    request_id(c, id, sizeof id);
    struct reply out = {0};
    struct cors_reply cors = {0};
    cors.origin = cors_allowed_origin(s->cfg->allowed_origins,
                                      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"));
    dispatch(s, c, st, method, url, id, &cors, &out);
    enum MHD_Result ret = send_reply(c, &out, id, &cors);
    json_decref(out.json);
    free(out.text);
    double dt = now_s() - st->t0;
    bool path_known;
    const struct route *rt = routes_find(method, url, &path_known);
    metrics_observe(&s->metrics, rt ? rt->path : "other", out.status, dt);
    log_request(s->cfg->log_format, id, method, url, out.status, dt);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    struct server *s = cls;
    struct conn *st = *con_cls;
    if (!st) return;
    free(st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* libmicrohttpd's error messages, through dsrd's log (JSON lines stay JSON). */
static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    const struct server *s = cls;
    log_warning_v(s->cfg->log_format, fmt, ap);
}

int server_start(struct server *s, const struct dsrd_config *cfg, struct dsr_err *err) {
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->draining, false);
    atomic_init(&s->seed_counter, (unsigned long long)time(NULL) * 0x9E3779B97F4A7C15ull);
    metrics_init(&s->metrics);
    struct timespec start;
    clock_gettime(CLOCK_REALTIME, &start);
    s->start_time = (double)start.tv_sec + start.tv_nsec * 1e-9;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        metrics_destroy(&s->metrics);
        return dsr_errf(err, "--host %s is not an IPv4 address", cfg->host);
    }
    if (idem_init(&s->idem, cfg->idempotency_records, err)) {
        metrics_destroy(&s->metrics);
        return -1;
    }
    if (worker_start(&s->worker, cfg, &s->metrics, &s->idem, err)) {
        idem_destroy(&s->idem);
        metrics_destroy(&s->metrics);
        return -1;
    }
    /* the logger first: libmicrohttpd warns about any option before it */
    s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                                  MHD_USE_ERROR_LOG,
                              (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
                              s, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_threads,
                              MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                              MHD_OPTION_END);
    if (!s->mhd) {
        worker_stop(&s->worker);
        idem_destroy(&s->idem);
        metrics_destroy(&s->metrics);
        return dsr_errf(err, "cannot listen on %s:%d (in use, or no permission)", cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    return 0;
}

void server_stop(struct server *s) {
    atomic_store(&s->draining, true);
    MHD_quiesce_daemon(s->mhd); /* stop accepting; in-flight requests go on */
    for (int i = 0; i < 6000 && atomic_load(&s->in_flight) > 0; i++) usleep(10000);
    MHD_stop_daemon(s->mhd);
    worker_stop(&s->worker);
    idem_destroy(&s->idem);
    metrics_destroy(&s->metrics);
}
