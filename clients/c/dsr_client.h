/* C client for the dsrd HTTP API v1 (proto/API.md), over libcurl + jansson.
 *
 * A `struct dsr_client` holds only configuration (base URL, keys, timeouts)
 * and is immutable after dsr_client_new(), so one handle may be shared by
 * several threads; every call uses its own curl easy handle.  Call
 * dsr_client_global_init() once, before any thread starts.
 *
 * Requests and responses are jansson values:
 *   - request bodies are BORROWED (the caller keeps its reference);
 *   - on success *out receives a NEW reference the caller must json_decref();
 *     on failure *out is NULL.
 *
 * Errors: every call returns 0 or -1 and fills a `struct dsr_call_err` that
 * says which kind of failure it was, so callers can retry transport errors,
 * timeouts and 5xx answers (dsr_call_err_retryable) and treat 4xx as fatal
 * with the server's own message (`type`, `param`, `msg` from the error
 * envelope {"error": {"code", "type", "message", "param"}}). */
#ifndef DSR_CLIENT_H
#define DSR_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum dsr_call_kind {
    DSR_CALL_OK = 0,
    DSR_CALL_TRANSPORT, /* connection refused/reset, DNS, ...: the server was not reached or vanished */
    DSR_CALL_TIMEOUT,   /* the request ran past the client's timeout */
    DSR_CALL_HTTP,      /* the server answered with a non-2xx status */
    DSR_CALL_PROTOCOL,  /* 2xx but the body is not the JSON the API promises */
    DSR_CALL_USAGE,     /* bad arguments from the caller (nothing was sent) */
};

struct dsr_call_err {
    enum dsr_call_kind kind;
    long status;     /* HTTP status when kind == DSR_CALL_HTTP, else 0 */
    char type[32];   /* error envelope "type" ("invalid_request", ...), or "" */
    char param[128]; /* error envelope "param", or "" */
    char msg[512];   /* human-readable: the server's message or the transport's */
};

/* True for failures where retrying the same request may succeed: transport
 * errors, timeouts and 5xx statuses (proto/API.md: "Retrying is safe for 5xx only"). */
int dsr_call_err_retryable(const struct dsr_call_err *e);

/* "HTTP 400 invalid_request (items[0].image): message", "timeout: ...", ... */
const char *dsr_call_kind_name(enum dsr_call_kind k);
void dsr_call_err_format(const struct dsr_call_err *e, char *buf, size_t size);

struct dsr_client_opts {
    const char *base_url;  /* "http://127.0.0.1:8080" (a trailing '/' is ignored) */
    const char *api_key;   /* Bearer key for model endpoints, or NULL */
    const char *admin_key; /* Bearer key for /update, /checkpoint, /reload, or NULL (then api_key) */
    long timeout_ms;       /* whole-request limit; 0 = 300 s */
    long connect_timeout_ms; /* 0 = 5 s */
};

struct dsr_client; /* opaque */

/* Global libcurl initialisation; call once per process before threads. */
int  dsr_client_global_init(void);
void dsr_client_global_cleanup(void);

/* Copies every string of opts. Returns NULL (and fills e) on bad options. */
struct dsr_client *dsr_client_new(const struct dsr_client_opts *opts, struct dsr_call_err *e);
void dsr_client_free(struct dsr_client *c);
const char *dsr_client_base_url(const struct dsr_client *c);

/* Generic call: method "GET"/"POST", path "/score".  body may be NULL (GET).
 * admin selects the admin key.  The response body must be a JSON object. */
int dsr_call(const struct dsr_client *c, const char *method, const char *path, json_t *body, int admin,
             json_t **out, struct dsr_call_err *e);

/* One function per endpoint; request/response shapes are proto/API.md's. */
int dsr_health(const struct dsr_client *c, json_t **out, struct dsr_call_err *e);
int dsr_model(const struct dsr_client *c, json_t **out, struct dsr_call_err *e);
int dsr_tokenize(const struct dsr_client *c, const char *text, int add_special, json_t **out,
                 struct dsr_call_err *e);
int dsr_detokenize(const struct dsr_client *c, json_t *tokens, json_t **out, struct dsr_call_err *e);
int dsr_logprobs(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e);
int dsr_score(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e);
int dsr_rollout(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e);
int dsr_update(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e);
int dsr_checkpoint(const struct dsr_client *c, const char *name, json_t **out, struct dsr_call_err *e);
int dsr_reload(const struct dsr_client *c, const char *path, json_t **out, struct dsr_call_err *e);
int dsr_openrlhf_reward(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e);

/* GET /metrics (Prometheus text): *text is malloc'ed, NUL-terminated. */
int dsr_metrics(const struct dsr_client *c, char **text, struct dsr_call_err *e);

/* Reads `policy_version` from a response object; -1 when absent. */
long dsr_policy_version(const json_t *resp);

/* Image spans.  dsr_image_png_file reads a PNG or JPEG file (at most
 * max_bytes; 0 = 64 MiB) and returns a NEW {"png"|"jpeg": "<base64>"}
 * object (the key by the file's signature). */
json_t *dsr_image_png_bytes(const uint8_t *png, size_t size);
json_t *dsr_image_png_file(const char *path, size_t max_bytes, struct dsr_call_err *e);

#endif
