/* /openrlhf/reward as OpenRLHF 0.11.0 (commit 3c3be62, openrlhf/utils/
 * agent.py SingleTurnAgentExecutor) calls it: query = decode(prompt ids +
 * response ids, skip_special_tokens=False) so it ends with the EOS text;
 * with several --reward.remote_url values the batch is split and some URLs
 * get empty lists; labels are the dataset's label column (a string, or a
 * list for image columns).  A 4xx makes OpenRLHF retry 5 times and then
 * drop every reward of the batch, so per-item problems answer 200 with a
 * null reward, and extra_logs (turned into tensors by OpenRLHF: numbers
 * only) says which items failed or had no prompt prefix. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "base64.h"
#include "harness.h"
#include "image/jpeg_io.h"
#include "image/png_io.h"

#define TINY "tests/fixtures/janus-tiny"
#define PROMPT "<|User|>: Describe this image.\n\n<|Assistant|>:"

struct api_test {
    struct th t;
    struct dsrd_proc p;
    char *png_b64, *jpeg_b64;
    char eos_text[64]; /* the EOS token's text, as HF decode writes it */
};

static const char *body(const struct http_resp *r) { return r->body ? r->body : "(none)"; }

/* R_U of a response for the PNG, from /score. */
static double r_u(struct api_test *a, const char *response, const char *b64) {
    struct http_resp r;
    http_post_json(&a->p, "/score",
                   json_pack("{s:[{s:s,s:{s:s},s:{s:s}}]}", "items", "task", "understanding", "image", "png", b64,
                             "response", "text", response),
                   NULL, &r);
    double v = json_number_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "reward"));
    if (r.status != 200) v = NAN;
    http_resp_free(&r);
    return v;
}

static int close_to(double got, double want) { return fabs(got - want) <= 1e-5 * fabs(want); }

/* extra_logs holds numbers or lists of numbers only (OpenRLHF calls
 * torch.tensor([value]) on each), one entry per item in each list. */
static void check_extra_logs(struct th *t, const json_t *resp, size_t n) {
    json_t *logs = json_object_get(resp, "extra_logs");
    TH_CHECK(t, json_is_object(logs), "no extra_logs object");
    const char *k;
    json_t *v;
    json_object_foreach(logs, k, v) {
        int ok = json_is_number(v);
        if (json_is_array(v)) {
            ok = json_array_size(v) == n;
            for (size_t i = 0; ok && i < json_array_size(v); i++) ok = json_is_number(json_array_get(v, i));
        }
        TH_CHECK(t, ok, "extra_logs.%s is not a number or %zu numbers", k, n);
    }
}

static void test_empty_lists(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_post_json(&a->p, "/openrlhf/reward", json_pack("{s:[],s:[],s:[]}", "query", "prompts", "labels"), NULL, &r);
    TH_CHECK(t, r.status == 200 && json_array_size(json_object_get(r.json, "rewards")) == 0 &&
                    json_is_array(json_object_get(r.json, "rewards")) &&
                    json_is_array(json_object_get(r.json, "scores")),
             "empty lists: %ld %s", r.status, body(&r));
    check_extra_logs(t, r.json, 0);
    http_resp_free(&r);
}

/* The EOS text OpenRLHF's decode leaves at the end is not caption text. */
static void test_trailing_special_tokens(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    double want = r_u(a, " a red circle", a->png_b64);
    char q1[256], q2[256];
    snprintf(q1, sizeof q1, "%s a red circle%s", PROMPT, a->eos_text);
    snprintf(q2, sizeof q2, "%s a red circle%s%s", PROMPT, a->eos_text, a->eos_text);
    struct http_resp r;
    http_post_json(&a->p, "/openrlhf/reward",
                   json_pack("{s:[s,s],s:[s,s],s:[s,s]}", "query", q1, q2, "prompts", PROMPT, PROMPT, "labels",
                             a->png_b64, a->png_b64),
                   NULL, &r);
    json_t *rw = json_object_get(r.json, "rewards");
    double r0 = json_number_value(json_array_get(rw, 0)), r1 = json_number_value(json_array_get(rw, 1));
    TH_CHECK(t, r.status == 200 && close_to(r0, want) && close_to(r1, want), "EOS scored: %g %g, want %g (%s)", r0, r1,
             want, body(&r));
    check_extra_logs(t, r.json, 2);
    http_resp_free(&r);
}

/* A prompt that is not a byte-exact prefix: the whole query is scored and
 * extra_logs and no_prompt_prefix name the item. */
static void test_no_prompt_prefix(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_post_json(&a->p, "/openrlhf/reward",
                   json_pack("{s:[s,s],s:[s,s],s:[s,s]}", "query", PROMPT " stripes", "User: stripes", "prompts",
                             PROMPT, "<|User|>: something else", "labels", a->png_b64, a->png_b64),
                   NULL, &r);
    json_t *flags = json_object_get(json_object_get(r.json, "extra_logs"), "dsr_no_prompt_prefix");
    json_t *idx = json_object_get(r.json, "no_prompt_prefix");
    double r1 = json_number_value(json_array_get(json_object_get(r.json, "rewards"), 1));
    TH_CHECK(t, r.status == 200 && json_number_value(json_array_get(flags, 0)) == 0 &&
                    json_number_value(json_array_get(flags, 1)) == 1 && json_array_size(idx) == 1 &&
                    json_integer_value(json_array_get(idx, 0)) == 1,
             "no-prefix report: %s", body(&r));
    TH_CHECK(t, close_to(r1, r_u(a, "User: stripes", a->png_b64)), "item 1 not scored whole: %g", r1);
    check_extra_logs(t, r.json, 2);
    http_resp_free(&r);
}

/* Labels as OpenRLHF datasets hold them: a string, a one-image list, a
 * data: URI, a JPEG, a path under --image-root. */
static void test_label_forms(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    char *uri = malloc(strlen(a->png_b64) + 32), *juri = malloc(strlen(a->jpeg_b64) + 32);
    sprintf(uri, "data:image/png;base64,%s", a->png_b64);
    sprintf(juri, "data:image/jpeg;base64,%s", a->jpeg_b64);
    struct http_resp r;
    json_t *q = json_array(), *p = json_array();
    for (int i = 0; i < 6; i++) {
        json_array_append_new(q, json_string(PROMPT " stripes"));
        json_array_append_new(p, json_string(PROMPT));
    }
    http_post_json(&a->p, "/openrlhf/reward",
                   json_pack("{s:o,s:o,s:[s,[s],s,s,[s],s]}", "query", q, "prompts", p, "labels", a->png_b64,
                             a->png_b64, uri, a->jpeg_b64, juri, "small.png"),
                   NULL, &r);
    json_t *rw = json_object_get(r.json, "rewards");
    double png = r_u(a, " stripes", a->png_b64), jpg = json_number_value(json_array_get(rw, 3));
    TH_CHECK(t, r.status == 200 && json_array_size(rw) == 6, "label forms: %ld %s", r.status, body(&r));
    for (int i = 0; i < 3; i++)
        TH_CHECK(t, close_to(json_number_value(json_array_get(rw, (size_t)i)), png), "label form %d: %g vs %g", i,
                 json_number_value(json_array_get(rw, (size_t)i)), png);
    TH_CHECK(t, isfinite(jpg) && close_to(json_number_value(json_array_get(rw, 4)), jpg), "jpeg %g vs data-uri jpeg %g",
             jpg, json_number_value(json_array_get(rw, 4)));
    TH_CHECK(t, json_is_number(json_array_get(rw, 5)), "path label: %s", body(&r));
    http_resp_free(&r);
    free(uri);
    free(juri);
}

/* One bad item: a null reward and a reason; the others are scored. */
static void test_per_item_failures(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    double want = r_u(a, " stripes", a->png_b64);
    struct http_resp r;
    http_post_json(&a->p, "/openrlhf/reward",
                   json_pack("{s:[s,s,s,s,s],s:[s,s,s,s,s],s:[s,s,[s,s],s,i]}", "query", PROMPT " stripes",
                             PROMPT " stripes", PROMPT " stripes", PROMPT " stripes", PROMPT " stripes", "prompts",
                             PROMPT, PROMPT, PROMPT, PROMPT, PROMPT, "labels", a->png_b64, "@@@@", a->png_b64,
                             a->png_b64, "missing.png", 7),
                   NULL, &r);
    json_t *rw = json_object_get(r.json, "rewards"), *errs = json_object_get(r.json, "errors");
    json_t *failed = json_object_get(json_object_get(r.json, "extra_logs"), "dsr_failed");
    TH_CHECK(t, r.status == 200 && json_array_size(rw) == 5 && close_to(json_number_value(json_array_get(rw, 0)), want),
             "batch with bad items: %ld %s", r.status, body(&r));
    static const char *const params[] = {NULL, "labels[1]", "labels[2]", "labels[3]", "labels[4]"};
    for (size_t i = 1; i < 5; i++) {
        TH_CHECK(t, json_is_null(json_array_get(rw, i)) && json_number_value(json_array_get(failed, i)) == 1,
                 "item %zu not null / not flagged", i);
        int found = 0;
        for (size_t k = 0; k < json_array_size(errs); k++) {
            json_t *e = json_array_get(errs, k);
            found |= json_integer_value(json_object_get(e, "index")) == (json_int_t)i &&
                     !strcmp(json_string_value(json_object_get(e, "param")) ?: "", params[i]) &&
                     json_is_string(json_object_get(e, "message"));
        }
        TH_CHECK(t, found, "no error entry for item %zu (%s)", i, params[i]);
    }
    TH_CHECK(t, json_number_value(json_array_get(failed, 0)) == 0, "item 0 flagged");
    check_extra_logs(t, r.json, 5);
    http_resp_free(&r);
}

/* A request that is not the protocol stays a 400. */
static void test_malformed_stays_400(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    static const struct {
        const char *body, *param;
    } cases[] = {
        {"{\"query\": \"x\", \"prompts\": [], \"labels\": []}", "query"},
        {"{\"query\": [\"a\"], \"prompts\": [], \"labels\": [\"x\"]}", "prompts"},
        {"{\"query\": [\"a\"], \"prompts\": [\"\"], \"labels\": []}", "labels"},
        {"{\"query\": [3], \"prompts\": [\"\"], \"labels\": [\"x\"]}", "query[0]"},
        {"{\"query\": [\"a\"], \"prompts\": [null], \"labels\": [\"x\"]}", "prompts[0]"},
        {"{\"prompts\": [], \"labels\": []}", "query"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_resp r;
        http_call(&a->p, "POST", "/openrlhf/reward", cases[i].body, strlen(cases[i].body), NULL, NULL, &r);
        const char *p = json_string_value(json_object_get(json_object_get(r.json, "error"), "param"));
        TH_CHECK(t, r.status == 400 && p && !strcmp(p, cases[i].param), "case %zu: %ld %s", i, r.status, body(&r));
        http_resp_free(&r);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct api_test a = {0};
    uint8_t rgb[40 * 24 * 3], *png = NULL, *jpg = NULL;
    for (int i = 0; i < 40 * 24; i++) {
        rgb[3 * i] = (uint8_t)(i * 7);
        rgb[3 * i + 1] = (uint8_t)(i / 40 * 10);
        rgb[3 * i + 2] = 200;
    }
    size_t pn = 0, jn = 0;
    struct dsr_err err = {{0}};
    int ok = png_encode_rgb8(rgb, 40, 24, &png, &pn, &err) == 0 && jpeg_encode_rgb8(rgb, 40, 24, 90, 0, &jpg, &jn, &err) == 0;
    a.png_b64 = ok ? base64_encode(png, pn) : NULL;
    a.jpeg_b64 = ok ? base64_encode(jpg, jn) : NULL;
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--image-root",
                          "tests/fixtures/image-processing", NULL};
    if (ok) dsrd_start(&a.p, argv[0], args);
    if (TH_CHECK(&a.t, ok && a.p.pid > 0, "set-up: %s; dsrd log %s", err.msg, a.p.log_path)) {
        /* the EOS text as HF's decode(skip_special_tokens=False) writes it */
        struct http_resp m, d;
        http_call(&a.p, "GET", "/model", NULL, 0, NULL, NULL, &m);
        json_int_t eos = json_integer_value(json_object_get(json_object_get(m.json, "special_tokens"), "eos"));
        http_post_json(&a.p, "/detokenize", json_pack("{s:[I],s:b}", "tokens", eos, "skip_special", 0), NULL, &d);
        snprintf(a.eos_text, sizeof a.eos_text, "%s", json_string_value(json_object_get(d.json, "text")) ?: "");
        TH_CHECK(&a.t, a.eos_text[0] != 0, "EOS %lld has no text: %s", (long long)eos, body(&d));
        http_resp_free(&m);
        http_resp_free(&d);
        th_run(&a.t, "empty_lists", test_empty_lists);
        th_run(&a.t, "trailing_special_tokens", test_trailing_special_tokens);
        th_run(&a.t, "no_prompt_prefix", test_no_prompt_prefix);
        th_run(&a.t, "label_forms", test_label_forms);
        th_run(&a.t, "per_item_failures", test_per_item_failures);
        th_run(&a.t, "malformed_stays_400", test_malformed_stays_400);
        dsrd_stop(&a.p);
    } else {
        a.t.failed++;
    }
    free(png);
    free(jpg);
    free(a.png_b64);
    free(a.jpeg_b64);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_openrlhf");
}
