/* HTTP API test support: start a real dsrd process on a free local port,
 * call it with libcurl, stop it with SIGTERM and collect its exit status.
 * The dsrd binary is the one built beside the test (BUILD/dsrd for
 * BUILD/tests/test_api*), so the ASan run tests the ASan daemon. */
#ifndef DSR_API_SUPPORT_H
#define DSR_API_SUPPORT_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

struct dsrd_proc {
    pid_t pid;
    int port;
    char log_path[256];
};

/* args: extra dsrd flags, NULL-terminated; without a --model the daemon
 * serves builtin:random.  Returns 0 once /health is 200. */
int dsrd_start(struct dsrd_proc *p, const char *argv0, const char *const *args);
/* The same, ready once /metrics says dsr_ready 1 (for a model whose /health
 * is not 200, e.g. one with non-finite weights). */
int dsrd_start_loaded(struct dsrd_proc *p, const char *argv0, const char *const *args);
/* SIGTERM, wait; returns the exit status (0 = clean), -1 on a crash. */
int dsrd_stop(struct dsrd_proc *p);
/* SIGTERM, wait at most `seconds`, then SIGKILL: the exit status, -1 on a
 * crash, -2 when it did not stop in time (and was killed). */
int dsrd_stop_within(struct dsrd_proc *p, double seconds);

struct http_resp {
    long status;
    char *body;
    json_t *json;         /* parsed body, or NULL */
    char request_id[160]; /* X-Request-Id header of the reply */
    char *headers;        /* every response header line, "Name: value\r\n" each */
};
/* Value of response header `name` (case-insensitive) into out; 0 when
 * present, -1 when absent. */
int http_header(const struct http_resp *r, const char *name, char *out, size_t size);
void http_resp_free(struct http_resp *r);

/* method "GET"/"POST"/"HEAD"/...; body may be NULL; key NULL for no Authorization;
 * extra_header e.g. "X-Request-Id: abc" or NULL.  "Content-Type: ..."
 * replaces the default application/json ("Content-Type:" sends none). */
int http_call(const struct dsrd_proc *p, const char *method, const char *path, const char *body, size_t len,
              const char *key, const char *extra_header, struct http_resp *out);
/* http_call giving up after timeout_s seconds (then -1, status 0). */
int http_call_within(const struct dsrd_proc *p, const char *method, const char *path, const char *body, size_t len,
                     const char *key, double timeout_s, struct http_resp *out);
/* POST of a JSON document (stolen reference). */
int http_post_json(const struct dsrd_proc *p, const char *path, json_t *doc, const char *key, struct http_resp *out);

/* Value of the /metrics sample named exactly `name` (labels included, e.g.
 * dsr_compute_seconds_count{kind="score"}), or -1 when absent. */
double api_metric(const char *text, const char *name);

/* JSON array from ints. */
json_t *json_ints(const int32_t *x, size_t n);

#endif
