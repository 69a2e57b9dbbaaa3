/* HTTP API tests of the web page's routes against a real dsrd (janus-tiny,
 * --api-key, --admin-key, --stats-history 3): the static files (/ and
 * /ui/NAME: bytes equal server/ui/, content types, ETag and no-cache, 304 on
 * If-None-Match, security headers, no key needed), 404 for every other path
 * under /ui/ including traversal attempts sent byte for byte, GET /stats
 * (bounded history, increasing versions, each update's response fields and
 * the rewards of the rollouts served before it; a reload drops the updates
 * it rolls back) and /detokenize's per-token pieces. */
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"
#define API "ui-api-key"
#define ADMIN "ui-admin-key"
#define HISTORY 3

/* Rewards of the scored rollouts served since the last update, as the
 * test saw them (what /stats must report). */
struct tally {
    long n;
    double sum, min, max;
};

/* th first, so a test function's struct th * is also its context. */
struct ui_test {
    struct th t;
    struct dsrd_proc p;
    char ckpt_dir[64];
    struct tally und, gen;
};

/* The value of the reply's header `name` into out; NULL when absent. */
static const char *header(const struct http_resp *r, const char *name, char *out, size_t size) {
    out[0] = 0;
    size_t n = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *end = strstr(p, "\r\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') v++;
            snprintf(out, size, "%.*s", (int)(len - (size_t)(v - p)), v);
            return out;
        }
        p += len + (end ? 2 : 0);
    }
    return NULL;
}

/* j as compact JSON text in buf (cut to fit), for messages. */
static const char *dump(const json_t *j, char *buf, size_t size) {
    size_t n = j ? json_dumpb(j, buf, size - 1, JSON_COMPACT) : 0;
    buf[n < size - 1 ? n : size - 1] = 0;
    return buf;
}

/* ---- static files ------------------------------------------------------------ */

static void check_file(struct th *t, struct ui_test *a, const char *path, const char *file, const char *type) {
    struct http_resp r;
    char v[512];
    http_call(&a->p, "GET", path, NULL, 0, NULL, NULL, &r); /* no key: the page asks for it later */
    char *want = th_read_file(file, NULL);
    TH_CHECK(t, r.status == 200 && want && r.body && strcmp(r.body, want) == 0, "GET %s: %ld, body %s %s", path,
             r.status, r.body && want && !strcmp(r.body, want) ? "is" : "is not", file);
    TH_CHECK(t, header(&r, "Content-Type", v, sizeof v) && strcmp(v, type) == 0, "%s Content-Type '%s', want '%s'",
             path, v, type);
    TH_CHECK(t, header(&r, "ETag", v, sizeof v) && strlen(v) > 2 && v[0] == '"' && v[strlen(v) - 1] == '"',
             "%s ETag '%s'", path, v);
    TH_CHECK(t, header(&r, "Cache-Control", v, sizeof v) && strcmp(v, "no-cache") == 0, "%s Cache-Control '%s'", path, v);
    TH_CHECK(t, header(&r, "X-Content-Type-Options", v, sizeof v) && strcmp(v, "nosniff") == 0, "%s nosniff", path);
    /* the page may load from its own origin only */
    TH_CHECK(t, header(&r, "Content-Security-Policy", v, sizeof v) && strstr(v, "default-src 'self'") &&
                    strstr(v, "connect-src 'self'"),
             "%s CSP '%s'", path, v);
    free(want);
    http_resp_free(&r);
}

static void test_page_files(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    check_file(t, a, "/", "server/ui/index.html", "text/html; charset=utf-8");
    check_file(t, a, "/ui/app.js", "server/ui/app.js", "text/javascript; charset=utf-8");
    check_file(t, a, "/ui/app.css", "server/ui/app.css", "text/css; charset=utf-8");
    check_file(t, a, "/ui/favicon.svg", "server/ui/favicon.svg", "image/svg+xml");
    /* every file the page references is served */
    struct http_resp r;
    http_call(&a->p, "GET", "/", NULL, 0, NULL, NULL, &r);
    int refs = 0;
    for (const char *p = r.body ? r.body : ""; (p = strstr(p, "\"/ui/")); p++, refs++) {
        char path[128];
        size_t n = strcspn(p + 1, "\"");
        snprintf(path, sizeof path, "%.*s", (int)n, p + 1);
        struct http_resp f;
        http_call(&a->p, "GET", path, NULL, 0, NULL, NULL, &f);
        TH_CHECK(t, f.status == 200, "the page references %s: %ld", path, f.status);
        http_resp_free(&f);
    }
    TH_CHECK(t, refs >= 3, "index.html references %d /ui/ files", refs);
    http_resp_free(&r);
}

static void test_conditional_get(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    struct http_resp r, js;
    char etag[256], again[256], h[320];
    http_call(&a->p, "GET", "/ui/app.js", NULL, 0, NULL, NULL, &js);
    header(&js, "ETag", etag, sizeof etag);
    snprintf(h, sizeof h, "If-None-Match: %s", etag);
    http_call(&a->p, "GET", "/ui/app.js", NULL, 0, NULL, h, &r);
    TH_CHECK(t, r.status == 304 && (!r.body || !r.body[0]), "current ETag: %ld, body '%s'", r.status, r.body ? r.body : "");
    TH_CHECK(t, header(&r, "ETag", again, sizeof again) && strcmp(again, etag) == 0, "304 repeats the ETag");
    http_resp_free(&r);
    snprintf(h, sizeof h, "If-None-Match: \"other\", %s", etag); /* one of a list */
    http_call(&a->p, "GET", "/ui/app.js", NULL, 0, NULL, h, &r);
    TH_CHECK(t, r.status == 304, "ETag in a list: %ld", r.status);
    http_resp_free(&r);
    http_call(&a->p, "GET", "/ui/app.js", NULL, 0, NULL, "If-None-Match: \"stale\"", &r);
    TH_CHECK(t, r.status == 200 && r.body && js.body && strcmp(r.body, js.body) == 0, "stale ETag: %ld", r.status);
    http_resp_free(&r);
    /* another file has another ETag, and this one's does not answer for it */
    http_call(&a->p, "GET", "/ui/app.css", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, header(&r, "ETag", again, sizeof again) && strcmp(again, etag) != 0, "ETags differ per file");
    http_resp_free(&r);
    snprintf(h, sizeof h, "If-None-Match: %s", etag);
    http_call(&a->p, "GET", "/ui/app.css", NULL, 0, NULL, h, &r);
    TH_CHECK(t, r.status == 200, "app.js's ETag for app.css: %ld", r.status);
    http_resp_free(&r);
    http_resp_free(&js);
}

static const char *error_type(const struct http_resp *r) {
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "type"));
}

static void test_not_found_and_methods(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    static const char *const missing[] = {"/ui/", "/ui", "/ui/nope.js", "/ui/APP.JS", "/ui/app.js/", "/ui/app.js.map",
                                          "/uix/app.js", "/index.html", "/ui/index.html/x", "/app.js"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        struct http_resp r;
        http_call(&a->p, "GET", missing[i], NULL, 0, NULL, NULL, &r);
        TH_CHECK(t, r.status == 404 && error_type(&r) && strcmp(error_type(&r), "not_found") == 0,
                 "GET %s: %ld %s", missing[i], r.status, r.body ? r.body : "");
        http_resp_free(&r);
    }
    static const char *const paths[] = {"/", "/ui/app.js"};
    for (int i = 0; i < 2; i++) {
        struct http_resp r;
        http_call(&a->p, "POST", paths[i], "{}", 2, API, NULL, &r);
        TH_CHECK(t, r.status == 405, "POST %s: %ld", paths[i], r.status);
        http_resp_free(&r);
    }
}

/* The status of "GET <path> HTTP/1.1" sent as these exact bytes (a client
 * library would normalise the dots away). */
static long raw_get(int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long status = -1;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        char req[512], resp[256] = {0};
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
        if (write(fd, req, (size_t)n) == n && read(fd, resp, sizeof resp - 1) > 12) status = strtol(resp + 9, NULL, 10);
    }
    if (fd >= 0) close(fd);
    return status;
}

static void test_path_traversal(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    static const char *const tries[] = {
        "/ui/../Makefile",        "/ui/..%2fMakefile",      "/ui/%2e%2e/Makefile", "/ui/%2e%2e%2fMakefile",
        "/ui/../../../etc/passwd", "/ui//etc/passwd",       "/ui/%2fetc%2fpasswd", "/ui/./app.js",
        "/ui/../server/ui/app.js", "/ui/..\\Makefile",      "/ui/%00/../Makefile", "/ui/%252e%252e/Makefile",
        "/ui/....//Makefile",     "/ui/../ui/../Makefile",
    };
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        long st = raw_get(a->p.port, tries[i]);
        TH_CHECK(t, st == 404 || st == 400, "GET %s: %ld (want 404)", tries[i], st);
    }
    TH_CHECK(t, raw_get(a->p.port, "/ui/app.js") == 200, "the raw client itself works");
}

/* The page is public (it asks for the key); the API behind it is not. */
static void test_auth(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    struct http_resp r;
    http_call(&a->p, "GET", "/stats", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.status == 401, "/stats without the key: %ld", r.status);
    http_resp_free(&r);
    http_call(&a->p, "GET", "/stats", NULL, 0, "wrong", NULL, &r);
    TH_CHECK(t, r.status == 401, "/stats with a wrong key: %ld", r.status);
    http_resp_free(&r);
    http_call(&a->p, "GET", "/stats", NULL, 0, API, NULL, &r);
    TH_CHECK(t, r.status == 200, "/stats with the key: %ld", r.status);
    http_resp_free(&r);
}

/* ---- /stats ------------------------------------------------------------------ */

static json_t *get_stats(struct ui_test *a, struct http_resp *r) {
    http_call(&a->p, "GET", "/stats", NULL, 0, API, NULL, r);
    return r->status == 200 ? r->json : NULL;
}

static void tally_add(struct tally *s, const json_t *rollouts) {
    size_t i;
    const json_t *x;
    json_array_foreach(rollouts, i, x) {
        double v = json_number_value(json_object_get(x, "reward"));
        if (s->n == 0 || v < s->min) s->min = v;
        if (s->n == 0 || v > s->max) s->max = v;
        s->sum += v;
        s->n++;
    }
}

/* o ({"rollouts", "reward_mean", ...}) reports the tally s. */
static bool tally_matches(const json_t *o, const struct tally *s) {
    if (json_integer_value(json_object_get(o, "rollouts")) != s->n) return false;
    if (s->n == 0) return json_is_null(json_object_get(o, "reward_mean")) && json_is_null(json_object_get(o, "reward_min"));
    double mean = json_number_value(json_object_get(o, "reward_mean"));
    return fabs(mean - s->sum / (double)s->n) <= 1e-9 * (1 + fabs(mean)) &&
           json_number_value(json_object_get(o, "reward_min")) == s->min &&
           json_number_value(json_object_get(o, "reward_max")) == s->max;
}

static void test_stats_empty(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    struct http_resp r;
    json_t *s = get_stats(a, &r);
    TH_CHECK(t, s && json_array_size(json_object_get(s, "updates")) == 0 &&
                    json_integer_value(json_object_get(s, "capacity")) == HISTORY &&
                    json_integer_value(json_object_get(s, "updates_recorded")) == 0 &&
                    json_integer_value(json_object_get(s, "policy_version")) == 0 &&
                    strcmp(json_string_value(json_object_get(s, "model")), "janus-tiny") == 0,
             "fresh /stats: %s", r.body ? r.body : "");
    json_t *since = json_object_get(s, "since_last_update");
    TH_CHECK(t, tally_matches(json_object_get(since, "und"), &a->und) && tally_matches(json_object_get(since, "gen"), &a->gen),
             "no rollouts yet: %s", r.body ? r.body : "");
    http_resp_free(&r);
}

/* A scored rollout group of each direction; their ids into ids[0..3]. */
static int rollouts(struct th *t, struct ui_test *a, int seed, json_t *ids) {
    struct http_resp g, u;
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:s},s:i,s:i,s:b}", "task", "generation", "prompt", "text", "a red circle", "n", 2,
                             "seed", seed, "score", 1),
                   API, &g);
    json_t *gr = json_object_get(g.json, "rollouts");
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:O},s:i,s:i,s:i,s:b}", "task", "understanding", "image", "codes",
                             json_object_get(json_array_get(gr, 0), "codes"), "n", 2, "max_tokens", 6, "seed", seed,
                             "score", 1),
                   API, &u);
    json_t *ur = json_object_get(u.json, "rollouts");
    int ok = TH_CHECK(t, g.status == 200 && u.status == 200, "rollouts: %ld %ld", g.status, u.status);
    if (ok) {
        tally_add(&a->gen, gr);
        tally_add(&a->und, ur);
        for (int i = 0; i < 2; i++) {
            json_array_append(ids, json_object_get(json_array_get(gr, i), "id"));
            json_array_append(ids, json_object_get(json_array_get(ur, i), "id"));
        }
    }
    http_resp_free(&g);
    http_resp_free(&u);
    return ok ? 0 : -1;
}

/* One GRPO update (or SimPO, two pairs) over fresh rollouts; its response
 * into *r (200 expected), the /stats record it must leave into want. */
static int update(struct th *t, struct ui_test *a, int seed, bool simpo, struct http_resp *r, struct tally want[2]) {
    json_t *ids = json_array();
    if (rollouts(t, a, seed, ids)) {
        json_decref(ids);
        return -1;
    }
    want[0] = a->und, want[1] = a->gen;
    json_t *req;
    if (simpo) {
        req = json_pack("{s:s,s:[{s:{s:O},s:{s:O}},{s:{s:O},s:{s:O}}],s:{s:f}}", "algorithm", "simpo", "pairs", "chosen",
                        "rollout_id", json_array_get(ids, 0), "rejected", "rollout_id", json_array_get(ids, 2), "chosen",
                        "rollout_id", json_array_get(ids, 1), "rejected", "rollout_id", json_array_get(ids, 3), "hyper",
                        "lr", 1e-3);
    } else {
        json_t *samples = json_array();
        for (size_t i = 0; i < 4; i++)
            json_array_append_new(samples, json_pack("{s:O,s:f}", "rollout_id", json_array_get(ids, i), "advantage",
                                                     i < 2 ? 1.0 : -1.0));
        req = json_pack("{s:s,s:o,s:{s:f}}", "algorithm", "grpo", "samples", samples, "hyper", "lr", 1e-3);
    }
    json_decref(ids);
    http_post_json(&a->p, "/update", req, ADMIN, r);
    memset(&a->und, 0, sizeof a->und);
    memset(&a->gen, 0, sizeof a->gen);
    return TH_CHECK(t, r->status == 200, "update: %ld %s", r->status, r->body ? r->body : "") ? 0 : -1;
}

static bool same_number(const json_t *x, const json_t *y) {
    return json_is_number(x) && json_is_number(y) && json_number_value(x) == json_number_value(y);
}

/* Five updates through a history of three: the last three are kept, oldest
 * first, each carrying its /update response's numbers and the rewards of
 * the rollouts served before it. */
static void test_stats_history(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    struct http_resp ups[5];
    struct tally want[5][2];
    char buf[1024];
    int n = 0;
    for (; n < 5; n++)
        if (update(t, a, 10 + n, n == 4, &ups[n], want[n])) break;
    if (!TH_CHECK(t, n == 5, "five updates applied")) goto out;
    /* served after the last update: pending until the next */
    json_t *ids = json_array();
    rollouts(t, a, 99, ids);
    json_decref(ids);

    struct http_resp r;
    json_t *s = get_stats(a, &r);
    json_t *list = json_object_get(s, "updates");
    TH_CHECK(t, s && json_array_size(list) == HISTORY && json_integer_value(json_object_get(s, "updates_recorded")) == 5,
             "bounded to %d of 5: %s", HISTORY, r.body ? r.body : "");
    long prev = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *u = json_array_get(list, i);
        const struct http_resp *up = &ups[5 - HISTORY + i];
        long v = (long)json_integer_value(json_object_get(u, "policy_version"));
        TH_CHECK(t, v > prev && v == (long)json_integer_value(json_object_get(up->json, "policy_version")),
                 "updates[%zu] version %ld after %ld", i, v, prev);
        prev = v;
        static const char *const same[] = {"loss", "kl", "clip_fraction", "grad_norm", "tokens"};
        for (int k = 0; k < 5; k++)
            TH_CHECK(t, same_number(json_object_get(u, same[k]), json_object_get(up->json, same[k])),
                     "updates[%zu].%s differs from the /update response %s", i, same[k], up->body);
        bool simpo = i == json_array_size(list) - 1;
        TH_CHECK(t, strcmp(json_string_value(json_object_get(u, "algorithm")), simpo ? "simpo" : "grpo") == 0 &&
                        json_integer_value(json_object_get(u, "samples")) == (simpo ? 2 : 4),
                 "updates[%zu] algorithm and samples", i);
        TH_CHECK(t, json_number_value(json_object_get(u, "time")) > 1.7e9, "updates[%zu].time is Unix time", i);
        const struct tally *w = want[5 - HISTORY + i];
        TH_CHECK(t, tally_matches(json_object_get(u, "und"), &w[0]) && tally_matches(json_object_get(u, "gen"), &w[1]),
                 "updates[%zu] rollout rewards: %s", i, dump(u, buf, sizeof buf));
    }
    TH_CHECK(t, json_integer_value(json_object_get(s, "policy_version")) == prev, "policy_version %lld is the last update's",
             (long long)json_integer_value(json_object_get(s, "policy_version")));
    json_t *since = json_object_get(s, "since_last_update"), *total = json_object_get(s, "rollouts_total");
    TH_CHECK(t, tally_matches(json_object_get(since, "und"), &a->und) && tally_matches(json_object_get(since, "gen"), &a->gen),
             "rollouts since the last update: %s", dump(since, buf, sizeof buf));
    TH_CHECK(t, json_integer_value(json_object_get(total, "und")) == 12 && json_integer_value(json_object_get(total, "gen")) == 12,
             "rollouts_total: %s", dump(total, buf, sizeof buf));
    http_resp_free(&r);

    /* an unscored rollout has no reward to count */
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:s},s:i,s:i}", "task", "generation", "prompt", "text", "a red circle", "n", 2, "seed", 1),
                   API, &r);
    http_resp_free(&r);
    s = get_stats(a, &r);
    TH_CHECK(t, tally_matches(json_object_get(json_object_get(s, "since_last_update"), "gen"), &a->gen),
             "unscored rollouts counted: %s", r.body ? r.body : "");
    http_resp_free(&r);
out:
    for (int i = 0; i < n; i++) http_resp_free(&ups[i]);
}

/* A reload to an earlier version drops the updates it undid: versions stay
 * increasing, and the next update follows the reloaded one. */
static void test_stats_reload(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    struct http_resp r, u;
    struct tally want[2];
    http_post_json(&a->p, "/checkpoint", json_pack("{s:s}", "name", "ui-ck"), ADMIN, &r);
    long at = (long)json_integer_value(json_object_get(r.json, "policy_version"));
    TH_CHECK(t, r.status == 200, "checkpoint: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        if (update(t, a, 50 + i, false, &u, want)) return;
        http_resp_free(&u);
    }
    http_post_json(&a->p, "/reload", json_pack("{s:s}", "path", "ui-ck"), ADMIN, &r);
    TH_CHECK(t, r.status == 200, "reload: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    json_t *s = get_stats(a, &r);
    json_t *list = json_object_get(s, "updates");
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    TH_CHECK(t, json_integer_value(json_object_get(s, "policy_version")) == at &&
                    json_integer_value(json_object_get(last, "policy_version")) == at && json_array_size(list) == 1,
             "after the reload to v%ld: %s", at, r.body ? r.body : "");
    http_resp_free(&r);
    memset(&a->und, 0, sizeof a->und); /* the reload restarts the tallies */
    memset(&a->gen, 0, sizeof a->gen);
    if (update(t, a, 60, false, &u, want)) return;
    http_resp_free(&u);
    s = get_stats(a, &r);
    list = json_object_get(s, "updates");
    long prev = 0;
    bool increasing = true;
    for (size_t i = 0; i < json_array_size(list); i++) {
        long v = (long)json_integer_value(json_object_get(json_array_get(list, i), "policy_version"));
        increasing = increasing && v > prev;
        prev = v;
    }
    TH_CHECK(t, increasing && prev == at + 1 && json_array_size(list) == 2, "after one more update: %s",
             r.body ? r.body : "");
    TH_CHECK(t, tally_matches(json_object_get(json_array_get(list, 1), "und"), &want[0]),
             "the update after the reload counts only rollouts after it");
    http_resp_free(&r);
}

/* /detokenize with pieces: each id alone; ids beyond the tokenizer are null. */
static void test_detokenize_pieces(struct th *t) {
    struct ui_test *a = (struct ui_test *)t;
    struct http_resp r;
    http_post_json(&a->p, "/detokenize", json_pack("{s:[i,i,i,i,i],s:b}", "tokens", 97, 32, 200, 300, 259, "pieces", 1),
                   API, &r);
    json_t *p = json_object_get(r.json, "pieces");
    TH_CHECK(t, r.status == 200 && json_array_size(p) == 5 && !json_object_get(r.json, "text"), "pieces: %ld %s",
             r.status, r.body ? r.body : "");
    TH_CHECK(t, p && !strcmp(json_string_value(json_array_get(p, 0)), "a") && !strcmp(json_string_value(json_array_get(p, 1)), " ") &&
                    !strcmp(json_string_value(json_array_get(p, 2)), "\xef\xbf\xbd") && json_is_null(json_array_get(p, 3)) &&
                    !strcmp(json_string_value(json_array_get(p, 4)), "<begin_of_image>"),
             "a, space, a lone byte (U+FFFD), an id beyond the tokenizer (null), a special token: %s", r.body);
    http_resp_free(&r);
    http_post_json(&a->p, "/detokenize", json_pack("{s:[i,i],s:b,s:b}", "tokens", 97, 259, "pieces", 1, "skip_special", 1),
                   API, &r);
    p = json_object_get(r.json, "pieces");
    TH_CHECK(t, r.status == 200 && json_array_size(p) == 2 && !strcmp(json_string_value(json_array_get(p, 1)), ""),
             "skip_special empties a special piece: %s", r.body ? r.body : "");
    http_resp_free(&r);
    http_post_json(&a->p, "/detokenize", json_pack("{s:[i],s:s}", "tokens", 97, "pieces", "yes"), API, &r);
    const char *param = json_string_value(json_object_get(json_object_get(r.json, "error"), "param"));
    TH_CHECK(t, r.status == 400 && param && !strcmp(param, "pieces"), "pieces must be a bool: %ld %s", r.status,
             r.body ? r.body : "");
    http_resp_free(&r);
    /* without pieces an id beyond the tokenizer still fails, as before */
    http_post_json(&a->p, "/detokenize", json_pack("{s:[i]}", "tokens", 300), API, &r);
    TH_CHECK(t, r.status == 400, "plain detokenize of id 300: %ld", r.status);
    http_resp_free(&r);
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct ui_test a = {0};
    snprintf(a.ckpt_dir, sizeof a.ckpt_dir, "/tmp/dsr-api-ui-XXXXXX");
    if (!mkdtemp(a.ckpt_dir)) return 1;
    char history[16];
    snprintf(history, sizeof history, "%d", HISTORY);
    const char *args[] = {"--model",    TINY,  "--boi-id",       "259",      "--eoi-id",        "260",   "--api-key",
                          API,          "--admin-key", ADMIN,    "--checkpoint-dir", a.ckpt_dir, "--stats-history",
                          history,      NULL};
    if (TH_CHECK(&a.t, dsrd_start(&a.p, argv[0], args) == 0, "dsrd starts (log %s)", a.p.log_path)) {
        th_run(&a.t, "page_files", test_page_files);
        th_run(&a.t, "conditional_get", test_conditional_get);
        th_run(&a.t, "not_found_and_methods", test_not_found_and_methods);
        th_run(&a.t, "path_traversal", test_path_traversal);
        th_run(&a.t, "auth", test_auth);
        th_run(&a.t, "stats_empty", test_stats_empty);
        th_run(&a.t, "stats_history", test_stats_history);
        th_run(&a.t, "stats_reload", test_stats_reload);
        th_run(&a.t, "detokenize_pieces", test_detokenize_pieces);
        TH_CHECK(&a.t, dsrd_stop(&a.p) == 0, "dsrd exits cleanly (log %s)", a.p.log_path);
    } else {
        a.t.failed++;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", a.ckpt_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", a.ckpt_dir);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_ui");
}
