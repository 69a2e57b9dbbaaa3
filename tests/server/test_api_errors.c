/* Error paths of the HTTP API against a real dsrd: every failure answers
 * the error envelope with the right status, type and field path, and the
 * daemon keeps serving afterwards. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"

struct api_test {
    struct th t;
    struct dsrd_proc p;   /* --max-body 65536, --api-key, --admin-key, --queue-depth 1, --image-root */
    char image_root[64];  /* holds a FIFO, a directory and an oversized file, all named *.png */
};

/* Checks status, error.type and error.param (NULL: param must be null). */
static void expect_error(struct th *t, const struct http_resp *r, long status, const char *type, const char *param,
                         const char *what) {
    json_t *e = json_object_get(r->json, "error");
    const char *ty = json_string_value(json_object_get(e, "type"));
    json_t *pa = json_object_get(e, "param");
    int param_ok = param ? json_is_string(pa) && strcmp(json_string_value(pa), param) == 0 : json_is_null(pa);
    TH_CHECK(t, r->status == status && e && json_integer_value(json_object_get(e, "code")) == status && ty &&
                    strcmp(ty, type) == 0 && param_ok && json_is_string(json_object_get(e, "message")),
             "%s: want %ld %s param=%s, got %ld %s", what, status, type, param ? param : "null", r->status,
             r->body ? r->body : "(no body)");
}

static void post_raw(struct api_test *a, const char *path, const char *body, const char *key, struct http_resp *r) {
    http_call(&a->p, "POST", path, body, strlen(body), key, NULL, r);
}

static void still_serving(struct th *t, struct api_test *a) {
    struct http_resp r;
    http_call(&a->p, "GET", "/health", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.status == 200, "daemon no longer serving: %ld", r.status);
    http_resp_free(&r);
}

static const char *KEY = "k-123";

struct bad_case {
    const char *path, *body;
    long status;
    const char *type, *param;
};

static void test_bad_requests(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    static const struct bad_case cases[] = {
        {"/logprobs", "{\"items\": [", 400, "invalid_request", NULL},            /* malformed JSON */
        {"/logprobs", "[1,2]", 400, "invalid_request", NULL},                   /* body not an object */
        {"/logprobs", "{}", 400, "invalid_request", "items"},                   /* missing field */
        {"/logprobs", "{\"items\": 3}", 400, "invalid_request", "items"},       /* wrong type */
        {"/logprobs", "{\"items\": [{\"context\": {\"tokens\": [1, \"x\"]}, \"target\": {\"tokens\": [2]}}]}", 400,
         "invalid_request", "items[0].context.tokens[1]"},
        {"/logprobs", "{\"items\": [{\"context\": {\"tokens\": [1]}, \"target\": {\"tokens\": [320]}}]}", 400,
         "invalid_request", "items[0].target.tokens[0]"},                       /* id out of vocab */
        {"/logprobs", "{\"items\": [{\"context\": {\"tokens\": [1]}, \"target\": {\"codes\": [-1]}}]}", 400,
         "invalid_request", "items[0].target.codes[0]"},
        {"/logprobs", "{\"items\": [{\"context\": {\"tokens\": [1]}}]}", 400, "invalid_request", "items[0].target"},
        {"/logprobs", "{\"items\": [{\"context\": {\"tokens\": [1, 261]}, \"target\": {\"tokens\": [2]}}]}", 400,
         "invalid_request", "items[0].context"},                               /* placeholder, no image */
        {"/logprobs", "{\"items\": [{\"context\": {\"tokens\": [1]}, \"target\": {\"tokens\": [2]}, \"extra\": 1}]}",
         400, "invalid_request", "items[0].extra"},
        {"/score", "{\"items\": [{\"task\": \"understanding\", \"image\": {\"png\": \"abc$\"}, \"response\": {\"text\": \"x\"}}]}",
         400, "invalid_request", "items[0].image.png"},                        /* bad base64 */
        {"/score", "{\"items\": [{\"task\": \"understanding\", \"image\": {\"png\": \"aGVsbG8gd29ybGQh\"}, \"response\": {\"text\": \"x\"}}]}",
         400, "invalid_request", "items[0].image.png"},                        /* not a PNG */
        {"/score", "{\"items\": [{\"task\": \"understanding\", \"image\": {\"png\": \"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCX\"}, \"response\": {\"text\": \"x\"}}]}",
         400, "invalid_request", "items[0].image.png"},                        /* corrupt PNG (bad CRC) */
        {"/score", "{\"items\": [{\"task\": \"understanding\", \"image\": {\"codes\": [1, 2]}, \"response\": {\"text\": \"x\"}}]}",
         400, "invalid_request", "items[0].image.codes"},                      /* not a whole image */
        {"/score", "{\"items\": [{\"task\": \"painting\"}]}", 400, "invalid_request", "items[0].task"},
        {"/score", "{\"items\": [{\"task\": \"generation\", \"image\": {\"path\": \"../x.png\"}, \"prompt\": {\"text\": \"x\"}}]}",
         400, "invalid_request", "items[0].image.path"},                       /* outside --image-root */
        {"/rollout", "{\"task\": \"generation\", \"prompt\": {\"text\": \"x\"}, \"n\": 0}", 400, "invalid_request", "n"},
        {"/rollout", "{\"task\": \"generation\", \"prompt\": {\"text\": \"x\"}, \"temperature\": \"hot\"}", 400,
         "invalid_request", "temperature"},
        {"/rollout", "{\"task\": \"generation\", \"context\": {\"tokens\": [256, 1]}}", 400, "invalid_request", "context"},
        {"/rollout", "{\"task\": \"understanding\", \"question\": \"q\"}", 400, "invalid_request", "image"},
        {"/openrlhf/reward", "{\"query\": [\"a\"], \"prompts\": [], \"labels\": [\"x\"]}", 400, "invalid_request", "prompts"},
        {"/tokenize", "{\"text\": 5}", 400, "invalid_request", "text"},
        {"/detokenize", "{\"tokens\": [999]}", 400, "invalid_request", "tokens[0]"},
        {"/nope", "{}", 404, "not_found", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_resp r;
        post_raw(a, cases[i].path, cases[i].body, KEY, &r);
        char what[64];
        snprintf(what, sizeof what, "case %zu (%s)", i, cases[i].path);
        expect_error(t, &r, cases[i].status, cases[i].type, cases[i].param, what);
        http_resp_free(&r);
    }
    struct http_resp r;
    http_call(&a->p, "GET", "/logprobs", NULL, 0, KEY, NULL, &r);
    expect_error(t, &r, 405, "invalid_request", NULL, "wrong method");
    http_resp_free(&r);
    still_serving(t, a);
}

static void test_auth(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    const char *body = "{\"text\": \"hi\"}";
    post_raw(a, "/tokenize", body, NULL, &r);
    expect_error(t, &r, 401, "unauthorized", NULL, "missing key");
    http_resp_free(&r);
    post_raw(a, "/tokenize", body, "k-124", &r);
    expect_error(t, &r, 401, "unauthorized", NULL, "wrong key");
    http_resp_free(&r);
    post_raw(a, "/tokenize", body, "k-12", &r);
    expect_error(t, &r, 401, "unauthorized", NULL, "key prefix");
    http_resp_free(&r);
    post_raw(a, "/tokenize", body, KEY, &r);
    TH_CHECK(t, r.status == 200, "right key: %ld", r.status);
    http_resp_free(&r);
    http_call(&a->p, "GET", "/metrics", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.status == 200, "/metrics needs no key: %ld", r.status);
    http_resp_free(&r);
    still_serving(t, a);
}

/* The status's companion header is present: 401 WWW-Authenticate, 405
 * Allow, 503 Retry-After. */
static void expect_header(struct th *t, const struct http_resp *r, const char *name, const char *want,
                          const char *what) {
    char v[256] = "";
    int has = http_header(r, name, v, sizeof v);
    TH_CHECK(t, has == 0 && (!want || strcmp(v, want) == 0), "%s: header %s: %s (want %s)", what, name,
             has ? "(absent)" : v, want ? want : "any value");
}

/* RFC 7235: the auth scheme is case-insensitive, spaces before the token
 * and after it do not count; 401 says which scheme (WWW-Authenticate). */
static void test_auth_scheme(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    const char *body = "{\"text\": \"hi\"}";
    static const char *const good[] = {"Authorization: bearer k-123", "Authorization: BEARER k-123",
                                       "Authorization: Bearer   k-123", "Authorization: Bearer k-123 \t "};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct http_resp r;
        http_call(&a->p, "POST", "/tokenize", body, strlen(body), NULL, good[i], &r);
        TH_CHECK(t, r.status == 200, "'%s': %ld %s", good[i], r.status, r.body ? r.body : "");
        http_resp_free(&r);
    }
    static const char *const bad[] = {"Authorization: Bearerk-123", "Authorization: Basic k-123",
                                      "Authorization: Bearer k-1234", "Authorization: bearer"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_resp r;
        http_call(&a->p, "POST", "/tokenize", body, strlen(body), NULL, bad[i], &r);
        expect_error(t, &r, 401, "unauthorized", NULL, bad[i]);
        expect_header(t, &r, "WWW-Authenticate", "Bearer realm=\"dsrd\"", bad[i]);
        http_resp_free(&r);
    }
}

/* A body that says it is not JSON is 415 (curl -d sends form encoding);
 * JSON with parameters, or no Content-Type at all, is accepted. */
static void test_content_type(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    const char *body = "{\"text\": \"hi\"}";
    static const struct {
        const char *header;
        long status;
    } cases[] = {
        {"Content-Type: application/x-www-form-urlencoded", 415},
        {"Content-Type: text/plain", 415},
        {"Content-Type: multipart/form-data; boundary=x", 415},
        {"Content-Type: application/jsonx", 415},
        {"Content-Type: application/json; charset=utf-8", 200},
        {"Content-Type: Application/JSON", 200},
        {"Content-Type: application/vnd.api+json", 200},
        {"Content-Type:", 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_resp r;
        http_call(&a->p, "POST", "/tokenize", body, strlen(body), KEY, cases[i].header, &r);
        if (cases[i].status == 415) expect_error(t, &r, 415, "unsupported_media_type", NULL, cases[i].header);
        else TH_CHECK(t, r.status == 200, "'%s': %ld %s", cases[i].header, r.status, r.body ? r.body : "");
        http_resp_free(&r);
    }
}

/* 405 names the allowed methods (Allow); HEAD works wherever GET does;
 * /openrlhf/reward rejects unknown
 * top-level fields like every other route. */
static void test_method_and_fields(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_call(&a->p, "GET", "/logprobs", NULL, 0, KEY, NULL, &r);
    expect_error(t, &r, 405, "invalid_request", NULL, "GET /logprobs");
    expect_header(t, &r, "Allow", "POST", "GET /logprobs");
    http_resp_free(&r);
    http_call(&a->p, "POST", "/health", "{}", 2, KEY, NULL, &r);
    expect_error(t, &r, 405, "invalid_request", NULL, "POST /health");
    expect_header(t, &r, "Allow", "GET, HEAD", "POST /health");
    http_resp_free(&r);
    /* HEAD is GET without the body (RFC 9110 9.3.2): the GET routes answer it */
    http_call(&a->p, "HEAD", "/health", NULL, 0, KEY, NULL, &r);
    TH_CHECK(t, r.status == 200 && (!r.body || !r.body[0]), "HEAD /health: %ld, body \"%s\"", r.status,
             r.body ? r.body : "");
    expect_header(t, &r, "Content-Type", "application/json", "HEAD /health");
    http_resp_free(&r);
    http_call(&a->p, "HEAD", "/logprobs", NULL, 0, KEY, NULL, &r);
    TH_CHECK(t, r.status == 405, "HEAD /logprobs: %ld", r.status);
    expect_header(t, &r, "Allow", "POST", "HEAD /logprobs");
    http_resp_free(&r);
    post_raw(a, "/openrlhf/reward", "{\"query\": [\"a\"], \"prompts\": [\"\"], \"labels\": [\"x.png\"], \"extra\": 1}",
             KEY, &r);
    expect_error(t, &r, 400, "invalid_request", "extra", "unknown field of /openrlhf/reward");
    http_resp_free(&r);
}

static void test_body_too_large(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    size_t n = 200000;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = 0;
    struct http_resp r;
    http_call(&a->p, "POST", "/logprobs", big, n, KEY, NULL, &r);
    expect_error(t, &r, 413, "payload_too_large", NULL, "200 kB body over --max-body 64K");
    http_resp_free(&r);
    free(big);
    still_serving(t, a);
}

struct flood_arg {
    struct api_test *a;
    long status;
    char type[32];
    char retry_after[16];
};

static void *flood_one(void *p) {
    struct flood_arg *f = p;
    struct http_resp r;
    http_post_json(&f->a->p, "/rollout",
                   json_pack("{s:s,s:{s:s},s:i,s:i}", "task", "generation", "prompt", "text", "a red circle", "n", 8,
                             "seed", 1),
                   KEY, &r);
    f->status = r.status;
    if (http_header(&r, "Retry-After", f->retry_after, sizeof f->retry_after)) f->retry_after[0] = 0;
    const char *ty = json_string_value(json_object_get(json_object_get(r.json, "error"), "type"));
    snprintf(f->type, sizeof f->type, "%s", ty ? ty : "");
    http_resp_free(&r);
    return NULL;
}

/* --queue-depth 1: a burst of slow rollouts overflows the queue; the
 * overflow gets 503 "unavailable", the rest succeed. */
static void test_full_queue(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    enum { N = 12 };
    pthread_t th[N];
    struct flood_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct flood_arg){.a = a};
        pthread_create(&th[i], NULL, flood_one, &args[i]);
    }
    int ok = 0, full = 0, other = 0, no_retry_after = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (args[i].status == 200) ok++;
        else if (args[i].status == 503 && strcmp(args[i].type, "unavailable") == 0) full++;
        else other++;
        no_retry_after += args[i].status == 503 && atoi(args[i].retry_after) < 1;
    }
    TH_CHECK(t, ok >= 1 && full >= 1 && other == 0, "burst of %d: %d ok, %d queue-full, %d other", N, ok, full, other);
    TH_CHECK(t, no_retry_after == 0, "%d of %d 503s without Retry-After", no_retry_after, full);
    still_serving(t, a);
}

/* A percent-encoded path with a non-UTF-8 byte, an escape sequence and a
 * newline: answered 404, and (checked after shutdown) logged as one valid
 * JSON line with those bytes escaped. */
#define HOSTILE_PATH "/%FF%1B[31mx%0Ay"
#define HOSTILE_LOGGED "/\\xff\\x1b[31mx\\x0ay"
static void test_hostile_path(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_call(&a->p, "GET", HOSTILE_PATH, NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.status == 404, "hostile path: status %ld", r.status);
    http_resp_free(&r);
    /* an escaped NUL must not cut the path short: /health%00x is not /health */
    const char *nul_paths[] = {"/health%00x", "/ui/app.js%00.png", "/model%00"};
    for (size_t i = 0; i < sizeof nul_paths / sizeof nul_paths[0]; i++) {
        http_call(&a->p, "GET", nul_paths[i], NULL, 0, NULL, NULL, &r);
        TH_CHECK(t, r.status == 404, "%s: status %ld, want 404", nul_paths[i], r.status);
        http_resp_free(&r);
    }
    still_serving(t, a);
}

/* Every line of the --log-format json log parses; the hostile path is there. */
static void check_json_log(struct th *t, const char *log_path) {
    FILE *f = fopen(log_path, "r");
    if (!TH_CHECK(t, f != NULL, "cannot read the log %s", log_path)) return;
    char line[8192];
    int lines = 0, bad = 0, hostile = 0, client_errors = 0, unexplained = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        lines++;
        if (!o) {
            bad++;
            continue;
        }
        const char *path = json_string_value(json_object_get(o, "path"));
        if (path && strcmp(path, HOSTILE_LOGGED) == 0) hostile++;
        json_int_t status = json_integer_value(json_object_get(o, "status"));
        if (status >= 400 && status < 500) {
            client_errors++;
            json_t *param = json_object_get(o, "param");
            unexplained += !json_is_string(json_object_get(o, "error")) || !(json_is_string(param) || json_is_null(param));
        }
        json_decref(o);
    }
    fclose(f);
    TH_CHECK(t, lines > 0 && bad == 0 && hostile == 1, "log %s: %d lines, %d not JSON, hostile path logged %d times",
             log_path, lines, bad, hostile);
    TH_CHECK(t, client_errors > 20 && unexplained == 0, "log %s: %d of %d 4xx lines lack \"error\" and \"param\"",
             log_path, unexplained, client_errors);
}

/* Image paths that are not regular files, or too large, are refused at once:
 * a FIFO would block open() (and then shutdown) forever. */
static void test_image_paths(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    static const char *const names[] = {"fifo.png", "dir.png", "big.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"items\": [{\"task\": \"generation\", \"image\": {\"path\": \"%s\"}, \"prompt\": {\"text\": \"x\"}}]}",
                 names[i]);
        struct http_resp r;
        http_call_within(&a->p, "POST", "/score", body, strlen(body), KEY, 10, &r);
        expect_error(t, &r, 400, "invalid_request", "items[0].image.path", names[i]);
        http_resp_free(&r);
    }
    still_serving(t, a);
}

static void test_clean_shutdown(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    char log_path[sizeof a->p.log_path];
    snprintf(log_path, sizeof log_path, "%s", a->p.log_path);
    /* the log is removed on a clean exit: keep a copy to read */
    char keep[sizeof log_path + 8];
    snprintf(keep, sizeof keep, "%s.keep", log_path);
    TH_CHECK(t, link(log_path, keep) == 0, "cannot link %s", log_path);
    int rc = dsrd_stop_within(&a->p, 20);
    TH_CHECK(t, rc == 0, "dsrd exit status %d on SIGTERM (-2: still running after 20 s; log: %s)", rc, log_path);
    check_json_log(t, keep);
    unlink(keep);
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct api_test a = {0};
    snprintf(a.image_root, sizeof a.image_root, "/tmp/dsr-api-errors-XXXXXX");
    if (!mkdtemp(a.image_root)) return 1;
    char path[128];
    snprintf(path, sizeof path, "%s/fifo.png", a.image_root);
    int made = mkfifo(path, 0644);
    snprintf(path, sizeof path, "%s/dir.png", a.image_root);
    made |= mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/big.png", a.image_root);
    FILE *big = fopen(path, "wb");
    made |= !big || ftruncate(fileno(big), 1 << 20) != 0; /* over --max-body */
    if (big) fclose(big);
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--max-body", "64K", "--api-key",
                          KEY, "--queue-depth", "1", "--log-format", "json", "--image-root", a.image_root, NULL};
    dsrd_start(&a.p, argv[0], args);
    if (TH_CHECK(&a.t, a.p.pid > 0, "dsrd did not come up (log %s)", a.p.log_path)) {
        th_run(&a.t, "bad_requests", test_bad_requests);
        th_run(&a.t, "auth", test_auth);
        th_run(&a.t, "auth_scheme", test_auth_scheme);
        th_run(&a.t, "content_type", test_content_type);
        th_run(&a.t, "method_and_fields", test_method_and_fields);
        th_run(&a.t, "body_too_large", test_body_too_large);
        th_run(&a.t, "full_queue", test_full_queue);
        th_run(&a.t, "hostile_path", test_hostile_path);
        if (TH_CHECK(&a.t, made == 0, "image-root fixtures in %s", a.image_root)) th_run(&a.t, "image_paths", test_image_paths);
        th_run(&a.t, "clean_shutdown", test_clean_shutdown);
    } else {
        a.t.failed++;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", a.image_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", a.image_root);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_errors");
}
