/* HTTP plumbing: one curl easy handle per call, JSON bodies, error envelope. */
#include "dsr_client.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

/* A response larger than this is refused (a rollout group with PNGs is a few MB). */
#define DSR_CLIENT_MAX_BODY ((size_t)512 << 20)

struct dsr_client {
    char *base_url; /* without trailing '/' */
    char *api_key, *admin_key;
    long timeout_ms, connect_timeout_ms;
};

static void call_errf(struct dsr_call_err *e, enum dsr_call_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void call_errf(struct dsr_call_err *e, enum dsr_call_kind kind, const char *fmt, ...) {
    if (!e) return;
    e->kind = kind;
    e->status = 0;
    e->type[0] = e->param[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

static void call_err_clear(struct dsr_call_err *e) {
    if (!e) return;
    memset(e, 0, sizeof *e);
}

int dsr_call_err_retryable(const struct dsr_call_err *e) {
    switch (e->kind) {
    case DSR_CALL_TRANSPORT:
    case DSR_CALL_TIMEOUT: return 1;
    case DSR_CALL_HTTP: return e->status >= 500;
    default: return 0;
    }
}

const char *dsr_call_kind_name(enum dsr_call_kind k) {
    switch (k) {
    case DSR_CALL_OK: return "ok";
    case DSR_CALL_TRANSPORT: return "transport error";
    case DSR_CALL_TIMEOUT: return "timeout";
    case DSR_CALL_HTTP: return "HTTP error";
    case DSR_CALL_PROTOCOL: return "protocol error";
    case DSR_CALL_USAGE: return "usage error";
    }
    return "error";
}

void dsr_call_err_format(const struct dsr_call_err *e, char *buf, size_t size) {
    if (e->kind == DSR_CALL_HTTP) {
        snprintf(buf, size, "HTTP %ld %s%s%s%s: %s", e->status, e->type[0] ? e->type : "error",
                 e->param[0] ? " (" : "", e->param, e->param[0] ? ")" : "", e->msg);
    } else {
        snprintf(buf, size, "%s: %s", dsr_call_kind_name(e->kind), e->msg);
    }
}

int dsr_client_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }

void dsr_client_global_cleanup(void) { curl_global_cleanup(); }

static char *dup_or_null(const char *s) { return s && s[0] ? strdup(s) : NULL; }

struct dsr_client *dsr_client_new(const struct dsr_client_opts *opts, struct dsr_call_err *e) {
    call_err_clear(e);
    const char *url = opts->base_url;
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        call_errf(e, DSR_CALL_USAGE, "server URL '%s' must start with http:// or https://", url ? url : "");
        return NULL;
    }
    struct dsr_client *c = calloc(1, sizeof *c);
    if (!c) {
        call_errf(e, DSR_CALL_USAGE, "out of memory");
        return NULL;
    }
    c->base_url = strdup(url);
    c->api_key = dup_or_null(opts->api_key);
    c->admin_key = dup_or_null(opts->admin_key);
    if (!c->base_url || (opts->api_key && opts->api_key[0] && !c->api_key) ||
        (opts->admin_key && opts->admin_key[0] && !c->admin_key)) {
        dsr_client_free(c);
        call_errf(e, DSR_CALL_USAGE, "out of memory");
        return NULL;
    }
    size_t n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/') c->base_url[--n] = '\0';
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 300000;
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    return c;
}

void dsr_client_free(struct dsr_client *c) {
    if (!c) return;
    free(c->base_url);
    free(c->api_key);
    free(c->admin_key);
    free(c);
}

const char *dsr_client_base_url(const struct dsr_client *c) { return c->base_url; }

/* Growing response buffer for curl's write callback. */
struct body_buf {
    char *data;
    size_t len, cap;
    int too_big;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct body_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > DSR_CLIENT_MAX_BODY - b->len) {
        b->too_big = 1;
        return 0; /* makes curl fail the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Copies a string member of the error envelope into dst. */
static void copy_envelope_field(const json_t *err, const char *key, char *dst, size_t size) {
    const char *s = json_string_value(json_object_get(err, key));
    if (s) snprintf(dst, size, "%s", s);
}

/* Fills e from a non-2xx response, using the API's error envelope when present. */
static void http_error(struct dsr_call_err *e, long status, const struct body_buf *b) {
    call_errf(e, DSR_CALL_HTTP, "%s", "");
    if (!e) return;
    e->status = status;
    json_t *root = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const json_t *env = json_object_get(root, "error");
    if (json_is_object(env)) {
        copy_envelope_field(env, "type", e->type, sizeof e->type);
        copy_envelope_field(env, "param", e->param, sizeof e->param);
        copy_envelope_field(env, "message", e->msg, sizeof e->msg);
    } else {
        /* not the envelope (a proxy, a crash page): show the start of the body */
        snprintf(e->msg, sizeof e->msg, "%.200s", b->data ? b->data : "(empty body)");
    }
    json_decref(root);
}

/* Performs one request; on success b holds the body and *status the code. */
static int perform(const struct dsr_client *c, const char *method, const char *path, const char *body_text,
                   int admin, struct body_buf *b, long *status, struct dsr_call_err *e) {
    char url[2048];
    if ((size_t)snprintf(url, sizeof url, "%s%s", c->base_url, path) >= sizeof url) {
        call_errf(e, DSR_CALL_USAGE, "URL too long");
        return -1;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        call_errf(e, DSR_CALL_TRANSPORT, "curl_easy_init failed");
        return -1;
    }
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body_text) headers = curl_slist_append(headers, "Content-Type: application/json");
    /* Admin endpoints take the admin key; without one the API key is tried
     * (a server started without --admin-key accepts it). */
    const char *key = admin && c->admin_key ? c->admin_key : c->api_key;
    char auth[600];
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        headers = curl_slist_append(headers, auth);
    }
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* thread safety: no SIGALRM */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_text ? body_text : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body_text ? strlen(body_text) : 0));
    }
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        call_errf(e, DSR_CALL_TIMEOUT, "%s %s: no answer within %ld ms", method, url, c->timeout_ms);
        return -1;
    }
    if (rc == CURLE_WRITE_ERROR && b->too_big) {
        call_errf(e, DSR_CALL_PROTOCOL, "%s %s: response larger than %zu bytes", method, url,
                  (size_t)DSR_CLIENT_MAX_BODY);
        return -1;
    }
    if (rc != CURLE_OK) {
        call_errf(e, DSR_CALL_TRANSPORT, "%s %s: %s", method, url, curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* Runs a request and returns the raw body (2xx) or the mapped error. */
static int call_raw(const struct dsr_client *c, const char *method, const char *path, json_t *body, int admin,
                    struct body_buf *b, struct dsr_call_err *e) {
    call_err_clear(e);
    char *body_text = NULL;
    if (body) {
        body_text = json_dumps(body, JSON_COMPACT);
        if (!body_text) {
            call_errf(e, DSR_CALL_USAGE, "request body for %s is not serialisable JSON", path);
            return -1;
        }
    }
    long status = 0;
    int rc = perform(c, method, path, body_text, admin, b, &status, e);
    free(body_text);
    if (rc != 0) return -1;
    if (status < 200 || status > 299) {
        http_error(e, status, b);
        return -1;
    }
    return 0;
}

int dsr_call(const struct dsr_client *c, const char *method, const char *path, json_t *body, int admin,
             json_t **out, struct dsr_call_err *e) {
    *out = NULL;
    struct body_buf b = {0};
    if (call_raw(c, method, path, body, admin, &b, e) != 0) {
        free(b.data);
        return -1;
    }
    json_error_t jerr;
    json_t *root = b.data ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
    free(b.data);
    if (!json_is_object(root)) {
        json_decref(root);
        call_errf(e, DSR_CALL_PROTOCOL, "%s %s: response is not a JSON object", method, path);
        return -1;
    }
    *out = root;
    return 0;
}

int dsr_health(const struct dsr_client *c, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "GET", "/health", NULL, 0, out, e);
}

int dsr_model(const struct dsr_client *c, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "GET", "/model", NULL, 0, out, e);
}

int dsr_tokenize(const struct dsr_client *c, const char *text, int add_special, json_t **out,
                 struct dsr_call_err *e) {
    json_t *req = json_pack("{s:s, s:b}", "text", text, "add_special", add_special);
    if (!req) {
        *out = NULL;
        call_errf(e, DSR_CALL_USAGE, "text to tokenize is not valid UTF-8");
        return -1;
    }
    int rc = dsr_call(c, "POST", "/tokenize", req, 0, out, e);
    json_decref(req);
    return rc;
}

int dsr_detokenize(const struct dsr_client *c, json_t *tokens, json_t **out, struct dsr_call_err *e) {
    json_t *req = json_pack("{s:O}", "tokens", tokens);
    int rc = dsr_call(c, "POST", "/detokenize", req, 0, out, e);
    json_decref(req);
    return rc;
}

int dsr_logprobs(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "POST", "/logprobs", req, 0, out, e);
}

int dsr_score(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "POST", "/score", req, 0, out, e);
}

int dsr_rollout(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "POST", "/rollout", req, 0, out, e);
}

int dsr_update(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "POST", "/update", req, 1, out, e);
}

int dsr_checkpoint(const struct dsr_client *c, const char *name, json_t **out, struct dsr_call_err *e) {
    json_t *req = json_pack("{s:s}", "name", name);
    int rc = dsr_call(c, "POST", "/checkpoint", req, 1, out, e);
    json_decref(req);
    return rc;
}

int dsr_reload(const struct dsr_client *c, const char *path, json_t **out, struct dsr_call_err *e) {
    json_t *req = json_pack("{s:s}", "path", path);
    int rc = dsr_call(c, "POST", "/reload", req, 1, out, e);
    json_decref(req);
    return rc;
}

int dsr_openrlhf_reward(const struct dsr_client *c, json_t *req, json_t **out, struct dsr_call_err *e) {
    return dsr_call(c, "POST", "/openrlhf/reward", req, 0, out, e);
}

int dsr_metrics(const struct dsr_client *c, char **text, struct dsr_call_err *e) {
    struct body_buf b = {0};
    if (call_raw(c, "GET", "/metrics", NULL, 0, &b, e) != 0) {
        free(b.data);
        *text = NULL;
        return -1;
    }
    *text = b.data ? b.data : strdup("");
    return 0;
}

long dsr_policy_version(const json_t *resp) {
    const json_t *v = json_object_get(resp, "policy_version");
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

json_t *dsr_image_png_bytes(const uint8_t *png, size_t size) {
    char *b64 = base64_encode(png, size);
    if (!b64) return NULL;
    /* the server reads either format from either key; the key says which it is */
    int jpeg = size >= 3 && png[0] == 0xFF && png[1] == 0xD8 && png[2] == 0xFF;
    json_t *span = json_pack("{s:s}", jpeg ? "jpeg" : "png", b64);
    free(b64);
    return span;
}

json_t *dsr_image_png_file(const char *path, size_t max_bytes, struct dsr_call_err *e) {
    call_err_clear(e);
    if (max_bytes == 0) max_bytes = (size_t)64 << 20;
    FILE *f = fopen(path, "rb");
    if (!f) {
        call_errf(e, DSR_CALL_USAGE, "cannot open image '%s'", path);
        return NULL;
    }
    /* size first, so the buffer is exactly the file (bounded by max_bytes) */
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size <= 0 || (unsigned long)size > max_bytes || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        call_errf(e, DSR_CALL_USAGE, "image '%s': %s", path,
                  size == 0 ? "empty file" : size < 0 ? "not a regular file" : "file too large");
        return NULL;
    }
    uint8_t *data = malloc((size_t)size);
    size_t n = data ? fread(data, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!data || n != (size_t)size) {
        free(data);
        call_errf(e, DSR_CALL_USAGE, "image '%s': %s", path, !data ? "out of memory" : "read error");
        return NULL;
    }
    json_t *span = dsr_image_png_bytes(data, n);
    free(data);
    if (!span) call_errf(e, DSR_CALL_USAGE, "out of memory encoding '%s'", path);
    return span;
}
