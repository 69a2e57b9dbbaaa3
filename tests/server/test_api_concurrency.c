/* Many clients at once against a real dsrd: /score, /logprobs and /rollout
 * interleaved.  Every request succeeds, batched scoring returns exactly
 * what each request gets alone, policy versions never go backwards, and
 * scoring jobs queued behind a rollout are folded into shared forwards. */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"
enum { N_CLIENTS = 16, ROUNDS = 3 };

struct api_test {
    struct th t;
    struct dsrd_proc p;
};

struct client {
    struct api_test *a;
    int id;
    double alone;          /* reward of this client's item scored alone */
    int failures, mismatches, backwards;
    char first_error[256];
};

static json_t *score_body(int id) {
    char text[64];
    snprintf(text, sizeof text, "client %d caption", id);
    json_t *codes = json_array();
    for (int i = 0; i < 64; i++) json_array_append_new(codes, json_integer((i * 7 + id) % 96));
    return json_pack("{s:[{s:s,s:{s:o},s:{s:s}}]}", "items", "task", "understanding", "image", "codes", codes,
                     "response", "text", text);
}

static double reward_of(const struct http_resp *r) {
    return json_number_value(json_object_get(json_array_get(json_object_get(r->json, "items"), 0), "reward"));
}

static void note_failure(struct client *c, const struct http_resp *r) {
    if (!c->failures++)
        snprintf(c->first_error, sizeof c->first_error, "%ld %s", r->status, r->body ? r->body : "(none)");
}

static void *client_main(void *arg) {
    struct client *c = arg;
    long last_version = 0;
    for (int k = 0; k < ROUNDS; k++) {
        struct http_resp r;
        if (c->id % 4 == 3) {
            http_post_json(&c->a->p, "/rollout",
                           json_pack("{s:s,s:{s:s},s:i,s:i,s:b}", "task", "generation", "prompt", "text", "a red circle",
                                     "n", 1, "seed", c->id * 10 + k, "score", 1),
                           NULL, &r);
        } else if (c->id % 4 == 2) {
            http_post_json(&c->a->p, "/logprobs",
                           json_pack("{s:[{s:{s:[i,i,i]},s:{s:[i,i,i,i]}}]}", "items", "context", "tokens", 256, c->id,
                                     259, "target", "codes", 1, 2, 3, c->id),
                           NULL, &r);
        } else {
            http_post_json(&c->a->p, "/score", score_body(c->id), NULL, &r);
            if (r.status == 200 && fabs(reward_of(&r) - c->alone) > 1e-5 * fabs(c->alone)) c->mismatches++;
        }
        if (r.status != 200) note_failure(c, &r);
        long v = (long)json_integer_value(json_object_get(r.json, "policy_version"));
        if (v < last_version) c->backwards++;
        last_version = v;
        http_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_clients(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct client cl[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        cl[i] = (struct client){.a = a, .id = i};
        struct http_resp r;
        http_post_json(&a->p, "/score", score_body(i), NULL, &r);
        cl[i].alone = reward_of(&r);
        TH_CHECK(t, r.status == 200, "single score %d: %ld", i, r.status);
        http_resp_free(&r);
    }
    pthread_t th[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) pthread_create(&th[i], NULL, client_main, &cl[i]);
    for (int i = 0; i < N_CLIENTS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_CLIENTS; i++) {
        TH_CHECK(t, cl[i].failures == 0, "client %d: %d failures, first: %s", i, cl[i].failures, cl[i].first_error);
        TH_CHECK(t, cl[i].mismatches == 0, "client %d: batched reward differs from alone", i);
        TH_CHECK(t, cl[i].backwards == 0, "client %d: policy_version went backwards", i);
    }
    struct http_resp m;
    http_call(&a->p, "GET", "/metrics", NULL, 0, NULL, NULL, &m);
    double jobs = m.body ? api_metric(m.body, "dsr_score_jobs_total") : -1;
    double batches = m.body ? api_metric(m.body, "dsr_score_batches_total") : -1;
    TH_CHECK(t, jobs > batches && batches > 0, "scoring jobs %g folded into %g forwards (expected batching)", jobs,
             batches);
    http_resp_free(&m);
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct api_test a = {0};
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", NULL};
    dsrd_start(&a.p, argv[0], args);
    if (TH_CHECK(&a.t, a.p.pid > 0, "dsrd did not come up (log %s)", a.p.log_path)) {
        th_run(&a.t, "concurrent_clients", test_concurrent_clients);
        int rc = dsrd_stop(&a.p);
        TH_CHECK(&a.t, rc == 0, "dsrd exit status %d on SIGTERM (log %s)", rc, a.p.log_path);
        if (rc) a.t.failed++;
    } else {
        a.t.failed++;
    }
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_concurrency");
}
