/* HTTP API tests against a real dsrd serving the janus-tiny fixture model:
 * every route's success path, and the fixture numbers reproduced through
 * HTTP (gen.r_u, rg.r_g, greedy_image.codes; greedy captions equal a
 * core-level greedy call). */
#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "base64.h"
#include "harness.h"
#include "model/image_embeds.h"
#include "model/janus_model.h"
#include "image/png_io.h"
#include "janus/rollout.h"

#define TINY "tests/fixtures/janus-tiny"

/* th first, so a test function's struct th * is also its context. */
struct api_test {
    struct th t;
    struct dsrd_proc p;
    struct st_file *cases;
};

static json_t *ids_of(struct st_file *f, const char *name, size_t lo, size_t hi) {
    size_t n;
    int32_t *x = th_tensor_i32(f, name, &n);
    if (hi == 0 || hi > n) hi = n;
    json_t *a = json_ints(x + lo, hi - lo);
    free(x);
    return a;
}

static void floats_of(const json_t *arr, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)json_number_value(json_array_get(arr, i));
}

static void test_health_model_tokenize(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_call(&a->p, "GET", "/health", NULL, 0, NULL, "X-Request-Id: test-abc-1", &r);
    TH_CHECK(t, r.status == 200 && json_integer_value(json_object_get(r.json, "policy_version")) == 0, "health");
    TH_CHECK(t, strcmp(r.request_id, "test-abc-1") == 0, "request id echoed: '%s'", r.request_id);
    http_resp_free(&r);
    http_call(&a->p, "GET", "/health", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, strlen(r.request_id) == 36, "generated UUID request id: '%s'", r.request_id);
    http_resp_free(&r);

    http_call(&a->p, "GET", "/model", NULL, 0, NULL, NULL, &r);
    json_t *sp = json_object_get(r.json, "special_tokens");
    TH_CHECK(t, r.status == 200, "model status %ld", r.status);
    TH_CHECK(t, json_integer_value(json_object_get(sp, "boi")) == 259 && json_integer_value(json_object_get(sp, "eoi")) == 260 &&
                    json_integer_value(json_object_get(sp, "image")) == 261 && json_integer_value(json_object_get(sp, "bos")) == 256,
             "special ids: %s", r.body);
    TH_CHECK(t, json_integer_value(json_object_get(r.json, "codebook_size")) == 96 &&
                    json_integer_value(json_object_get(r.json, "num_image_tokens")) == 64,
             "sizes");
    TH_CHECK(t, strcmp(json_string_value(json_object_get(r.json, "model")), "janus-tiny") == 0, "name");
    http_resp_free(&r);

    http_post_json(&a->p, "/tokenize", json_pack("{s:s}", "text", "a red <begin_of_image>"), NULL, &r);
    json_t *toks = json_object_get(r.json, "tokens");
    TH_CHECK(t, r.status == 200 && json_array_size(toks) == 7 &&
                    json_integer_value(json_array_get(toks, 0)) == 'a' && json_integer_value(json_array_get(toks, 6)) == 259,
             "tokenize: %s", r.body);
    json_t *back = json_pack("{s:O}", "tokens", toks);
    http_resp_free(&r);
    http_post_json(&a->p, "/detokenize", back, NULL, &r);
    TH_CHECK(t, r.status == 200 && strcmp(json_string_value(json_object_get(r.json, "text")), "a red <begin_of_image>") == 0,
             "detokenize: %s", r.body);
    http_resp_free(&r);
}

/* gen.r_u: codes given gen.prompt_ids through /logprobs. */
static void test_logprobs_gen_fixture(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    json_t *req = json_pack("{s:[{s:{s:o},s:{s:o}}]}", "items", "context", "tokens", ids_of(a->cases, "gen.prompt_ids", 0, 0),
                            "target", "codes", ids_of(a->cases, "gen.codes", 0, 0));
    struct http_resp r;
    http_post_json(&a->p, "/logprobs", req, NULL, &r);
    json_t *it = json_array_get(json_object_get(r.json, "items"), 0);
    size_t n;
    float *want = th_tensor_f32(a->cases, "gen.logprobs", &n), *r_u = th_tensor_f32(a->cases, "gen.r_u", &n);
    float got[64], mean;
    if (TH_CHECK(t, r.status == 200 && json_array_size(json_object_get(it, "logprobs")) == 64, "status %ld %s", r.status,
                 r.body ? r.body : "")) {
        floats_of(json_object_get(it, "logprobs"), got, 64);
        TH_CLOSE(t, "gen.logprobs", got, want, 64, 1e-4);
        mean = (float)json_number_value(json_object_get(it, "mean"));
        TH_CLOSE(t, "gen.r_u", &mean, r_u, 1, 1e-4);
        TH_CHECK(t, json_array_size(json_object_get(it, "codes")) == 64, "codes echoed");
    }
    free(want);
    free(r_u);
    http_resp_free(&r);
}

/* rg.r_g: the target after the context, image seen through its VQ codes. */
static void test_logprobs_rg_fixture(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    size_t n;
    int32_t *start = th_tensor_i32(a->cases, "rg.target_start", &n);
    json_t *req = json_pack("{s:[{s:{s:o},s:{s:o},s:{s:o}}]}", "items", "context", "tokens",
                            ids_of(a->cases, "rg.input_ids", 0, (size_t)start[0]), "image", "codes",
                            ids_of(a->cases, "vq.codes", 0, 0), "target", "tokens",
                            ids_of(a->cases, "rg.input_ids", (size_t)start[0], 0));
    free(start);
    struct http_resp r;
    http_post_json(&a->p, "/logprobs", req, NULL, &r);
    json_t *it = json_array_get(json_object_get(r.json, "items"), 0);
    float *want = th_tensor_f32(a->cases, "rg.logprobs", &n), *r_g = th_tensor_f32(a->cases, "rg.r_g", &n);
    float got[8], mean;
    if (TH_CHECK(t, r.status == 200 && json_array_size(json_object_get(it, "logprobs")) == 8, "status %ld %s", r.status,
                 r.body ? r.body : "")) {
        floats_of(json_object_get(it, "logprobs"), got, 8);
        TH_CLOSE(t, "rg.logprobs", got, want, 8, 1e-4);
        mean = (float)json_number_value(json_object_get(it, "mean"));
        TH_CLOSE(t, "rg.r_g", &mean, r_g, 1, 1e-4);
    }
    free(want);
    free(r_g);
    http_resp_free(&r);
}

/* Both items of one /logprobs call equal the same items sent alone (the
 * packed batch changes nothing). */
static void test_logprobs_batch_equals_single(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    json_t *i1 = json_pack("{s:{s:o},s:{s:o}}", "context", "tokens", ids_of(a->cases, "gen.prompt_ids", 0, 0), "target",
                           "codes", ids_of(a->cases, "gen.codes", 0, 10));
    json_t *i2 = json_pack("{s:{s:[i,i,i]},s:{s:s}}", "context", "tokens", 256, 40, 41, "target", "text", "hello");
    struct http_resp both, one;
    http_post_json(&a->p, "/logprobs", json_pack("{s:[O,O]}", "items", i1, i2), NULL, &both);
    http_post_json(&a->p, "/logprobs", json_pack("{s:[O]}", "items", i2), NULL, &one);
    double s_both = json_number_value(json_object_get(json_array_get(json_object_get(both.json, "items"), 1), "sum"));
    double s_one = json_number_value(json_object_get(json_array_get(json_object_get(one.json, "items"), 0), "sum"));
    TH_CHECK(t, both.status == 200 && one.status == 200, "status");
    TH_CHECK(t, fabs(s_both - s_one) < 1e-4 * fabs(s_one) + 1e-5, "batched %g vs alone %g", s_both, s_one);
    json_decref(i1);
    json_decref(i2);
    http_resp_free(&both);
    http_resp_free(&one);
}

/* /score's rewards equal /logprobs over the documented templates. */
static void test_score_matches_templates(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    json_t *codes = ids_of(a->cases, "vq.codes", 0, 0);
    struct http_resp r, lu, lg, tk1, tk2, tk3;
    http_post_json(&a->p, "/score",
                   json_pack("{s:[{s:s,s:{s:O},s:{s:s}},{s:s,s:{s:s},s:{s:O}}],s:b}", "items", "task", "understanding",
                             "image", "codes", codes, "response", "text", "a red circle", "task", "generation",
                             "prompt", "text", "a red circle", "image", "codes", codes, "token_logprobs", 1),
                   NULL, &r);
    TH_CHECK(t, r.status == 200, "score status %ld %s", r.status, r.body ? r.body : "");
    /* gen_context("a red circle") = [BOS] tok("<|User|>: a red circle\n\n<|Assistant|>:") [BOI] */
    http_post_json(&a->p, "/tokenize", json_pack("{s:s}", "text", "<|User|>: a red circle\n\n<|Assistant|>:"), NULL, &tk1);
    json_t *ctx = json_array();
    json_array_append_new(ctx, json_integer(256));
    json_array_extend(ctx, json_object_get(tk1.json, "tokens"));
    json_array_append_new(ctx, json_integer(259));
    http_post_json(&a->p, "/logprobs", json_pack("{s:[{s:{s:o},s:{s:O}}]}", "items", "context", "tokens", ctx, "target", "codes", codes),
                   NULL, &lu);
    /* und_context(dual question) and rg_target(" a red circle") */
    http_post_json(&a->p, "/tokenize", json_pack("{s:s}", "text", "<|User|>: "), NULL, &tk2);
    http_post_json(&a->p, "/tokenize", json_pack("{s:s}", "text", "\nDescribe this image.\n\n<|Assistant|>:"), NULL, &tk3);
    json_t *und = json_array();
    json_array_append_new(und, json_integer(256));
    json_array_extend(und, json_object_get(tk2.json, "tokens"));
    json_array_append_new(und, json_integer(259));
    for (int i = 0; i < 64; i++) json_array_append_new(und, json_integer(261));
    json_array_append_new(und, json_integer(260));
    json_array_extend(und, json_object_get(tk3.json, "tokens"));
    http_post_json(&a->p, "/logprobs",
                   json_pack("{s:[{s:{s:o},s:{s:O},s:{s:s}}]}", "items", "context", "tokens", und, "image", "codes", codes,
                             "target", "text", " a red circle"),
                   NULL, &lg);
    json_t *items = json_object_get(r.json, "items");
    double ru = json_number_value(json_object_get(json_array_get(items, 0), "reward"));
    double rg = json_number_value(json_object_get(json_array_get(items, 1), "reward"));
    double ru_lp = json_number_value(json_object_get(json_array_get(json_object_get(lu.json, "items"), 0), "mean"));
    double rg_lp = json_number_value(json_object_get(json_array_get(json_object_get(lg.json, "items"), 0), "mean"));
    TH_CHECK(t, lu.status == 200 && lg.status == 200, "logprobs status %ld %ld", lu.status, lg.status);
    TH_CHECK(t, fabs(ru - ru_lp) < 1e-4 * fabs(ru_lp), "R_U %g vs gen_context logprobs %g", ru, ru_lp);
    TH_CHECK(t, fabs(rg - rg_lp) < 1e-4 * fabs(rg_lp), "R_G %g vs und_context logprobs %g", rg, rg_lp);
    TH_CHECK(t, json_array_size(json_object_get(json_array_get(items, 1), "logprobs")) == 13, "token_logprobs (13 targets)");
    json_decref(codes);
    http_resp_free(&r);
    http_resp_free(&lu);
    http_resp_free(&lg);
    http_resp_free(&tk1);
    http_resp_free(&tk2);
    http_resp_free(&tk3);
}

static char *png_b64_of(const uint8_t *rgb, int w, int h) {
    uint8_t *png;
    size_t n;
    struct dsr_err err;
    if (png_encode_rgb8(rgb, w, h, &png, &n, &err)) return NULL;
    char *s = base64_encode(png, n);
    free(png);
    return s;
}

/* A PNG image: /score understanding through VQ encoding equals the codes
 * path with the codes /logprobs reports for the same PNG; /openrlhf/reward
 * gives the same R_U. */
static void test_png_score_and_openrlhf(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    uint8_t rgb[40 * 24 * 3];
    for (int i = 0; i < 40 * 24; i++) {
        rgb[3 * i] = (uint8_t)(i * 7);
        rgb[3 * i + 1] = (uint8_t)(i / 40 * 10);
        rgb[3 * i + 2] = 200;
    }
    char *b64 = png_b64_of(rgb, 40, 24);
    struct http_resp s, l, o;
    http_post_json(&a->p, "/score",
                   json_pack("{s:[{s:s,s:{s:s},s:{s:s}}]}", "items", "task", "understanding", "image", "png", b64,
                             "response", "text", "stripes"),
                   NULL, &s);
    http_post_json(&a->p, "/logprobs",
                   json_pack("{s:[{s:{s:[i,i]},s:{s:s}}]}", "items", "context", "tokens", 256, 259, "target", "png", b64),
                   NULL, &l);
    json_t *codes = json_object_get(json_array_get(json_object_get(l.json, "items"), 0), "codes");
    TH_CHECK(t, s.status == 200 && l.status == 200 && json_array_size(codes) == 64, "status %ld %ld", s.status, l.status);
    struct http_resp c;
    http_post_json(&a->p, "/score",
                   json_pack("{s:[{s:s,s:{s:O},s:{s:s}}]}", "items", "task", "understanding", "image", "codes", codes,
                             "response", "text", "stripes"),
                   NULL, &c);
    double r_png = json_number_value(json_object_get(json_array_get(json_object_get(s.json, "items"), 0), "reward"));
    double r_codes = json_number_value(json_object_get(json_array_get(json_object_get(c.json, "items"), 0), "reward"));
    TH_CHECK(t, c.status == 200 && fabs(r_png - r_codes) < 1e-5 * fabs(r_codes), "png %g vs codes %g", r_png, r_codes);
    http_post_json(&a->p, "/openrlhf/reward",
                   json_pack("{s:[s],s:[s],s:[s]}", "query", "Q: what is it? stripes", "prompts", "Q: what is it? ",
                             "labels", b64),
                   NULL, &o);
    double r_o = json_number_value(json_array_get(json_object_get(o.json, "rewards"), 0));
    TH_CHECK(t, o.status == 200 && fabs(r_o - r_codes) < 1e-5 * fabs(r_codes), "openrlhf %g vs %g (%s)", r_o, r_codes,
             o.body ? o.body : "");
    free(b64);
    http_resp_free(&s);
    http_resp_free(&l);
    http_resp_free(&c);
    http_resp_free(&o);
}

/* greedy_image.codes: context greedy_image.prompt_ids, cfg 5, temperature 0. */
static void test_rollout_greedy_image(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:o},s:i,s:f,s:f,s:b}", "task", "generation", "context", "tokens",
                             ids_of(a->cases, "greedy_image.prompt_ids", 0, 0), "n", 2, "cfg_scale", 5.0,
                             "temperature", 0.0, "return_png", 1),
                   NULL, &r);
    size_t n;
    int32_t *want = th_tensor_i32(a->cases, "greedy_image.codes", &n);
    json_t *rolls = json_object_get(r.json, "rollouts");
    if (TH_CHECK(t, r.status == 200 && json_array_size(rolls) == 2, "status %ld %s", r.status, r.body ? r.body : "")) {
        for (int g = 0; g < 2; g++) {
            json_t *codes = json_object_get(json_array_get(rolls, g), "codes");
            int bad = 0;
            for (size_t i = 0; i < n; i++) bad += json_integer_value(json_array_get(codes, i)) != want[i];
            TH_CHECK(t, json_array_size(codes) == n && bad == 0, "rollout %d: %d codes differ", g, bad);
        }
        const char *png = json_string_value(json_object_get(json_array_get(rolls, 0), "png"));
        uint8_t *bytes = NULL, *rgb = NULL;
        size_t nb, bad_at;
        int w = 0, h = 0;
        TH_CHECK(t, png && base64_decode(png, strlen(png), &bytes, &nb, &bad_at) == 0 &&
                        png_decode_rgb8(bytes, nb, NULL, &rgb, &w, &h, NULL) == 0 && w == 32 && h == 32,
                 "png 32x32");
        free(bytes);
        free(rgb);
        TH_CHECK(t, strlen(json_string_value(json_object_get(json_array_get(rolls, 0), "id"))) == 36, "rollout id");
    }
    free(want);
    http_resp_free(&r);
}

/* A greedy caption over HTTP is deterministic and equals a core-level
 * sample_text_group on the same model and image. */
static void test_rollout_greedy_caption_matches_core(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    size_t np, nc;
    int32_t *prompt = th_tensor_i32(a->cases, "greedy_text.prompt_ids", &np);
    int32_t *codes = th_tensor_i32(a->cases, "vq.codes", &nc);
    struct http_resp r1, r2;
    for (int k = 0; k < 2; k++)
        http_post_json(&a->p, "/rollout",
                       json_pack("{s:s,s:{s:o},s:{s:o},s:i,s:i,s:f,s:b}", "task", "understanding", "context", "tokens",
                                 json_ints(prompt, np), "image", "codes", json_ints(codes, nc), "n", 1, "max_tokens", 8,
                                 "temperature", 0.0, "score", 1),
                       NULL, k ? &r2 : &r1);
    json_t *t1 = json_object_get(json_array_get(json_object_get(r1.json, "rollouts"), 0), "tokens");
    json_t *t2 = json_object_get(json_array_get(json_object_get(r2.json, "rollouts"), 0), "tokens");
    TH_CHECK(t, r1.status == 200 && r2.status == 200 && json_equal(t1, t2), "deterministic: %s", r1.body ? r1.body : "");
    TH_CHECK(t, json_is_number(json_object_get(json_array_get(json_object_get(r1.json, "rollouts"), 0), "reward")), "reward");
    struct janus_model m;
    struct dsr_err err;
    if (TH_CHECK(t, janus_model_load_dir(TINY, JANUS_WEIGHTS_F32, NULL, &m, &err) == 0, "load: %s", err.msg)) {
        m.cfg.boi_token_id = 259;
        float *embeds = malloc(64 * 64 * sizeof *embeds);
        struct text_group g = {0};
        struct sampling_params sp = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 0};
        if (TH_CHECK(t, janus_embeds_from_codes(&m, codes, embeds, &err) == 0 &&
                            sample_text_group(&m, prompt, (int)np, embeds, 64, 1, 8, &sp, &g, &err) == 0,
                     "core: %s", err.msg)) {
            int bad = json_array_size(t1) != (size_t)g.lengths[0];
            for (int i = 0; !bad && i < g.lengths[0]; i++) bad += json_integer_value(json_array_get(t1, i)) != g.tokens[i];
            TH_CHECK(t, !bad, "HTTP caption differs from the core-level greedy caption");
        }
        text_group_free(&g);
        free(embeds);
        janus_model_free(&m);
    }
    free(prompt);
    free(codes);
    http_resp_free(&r1);
    http_resp_free(&r2);
}

static void test_rollout_sampled_and_metrics(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r, m;
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:s},s:i,s:i,s:f,s:i,s:f,s:i,s:b}", "task", "understanding", "image", "path",
                             "square.png", "n", 4, "max_tokens", 6, "temperature", 1.0, "top_k", 50, "top_p", 0.9,
                             "seed", 7, "score", 1),
                   NULL, &r);
    json_t *rolls = json_object_get(r.json, "rollouts");
    TH_CHECK(t, r.status == 200 && json_array_size(rolls) == 4, "status %ld %s", r.status, r.body ? r.body : "");
    for (size_t g = 0; g < json_array_size(rolls); g++) {
        json_t *x = json_array_get(rolls, g);
        TH_CHECK(t, json_array_size(json_object_get(x, "tokens")) == json_array_size(json_object_get(x, "logprobs")) &&
                        json_is_string(json_object_get(x, "text")) && json_is_number(json_object_get(x, "reward")),
                 "rollout %zu fields", g);
    }
    http_call(&a->p, "GET", "/metrics", NULL, 0, NULL, NULL, &m);
    TH_CHECK(t, m.status == 200 && strstr(m.body, "dsr_requests_total{route=\"/rollout\",status=\"200\"}") &&
                    strstr(m.body, "dsr_request_seconds_bucket") && strstr(m.body, "dsr_tokens_generated_total") &&
                    strstr(m.body, "process_resident_memory_bytes") && strstr(m.body, "dsr_policy_version 0"),
             "metrics");
    /* the rollout's compute time is counted, and is less than its request's */
    double roll_s = m.body ? api_metric(m.body, "dsr_compute_seconds_sum{kind=\"rollout\"}") : -1;
    double roll_n = m.body ? api_metric(m.body, "dsr_compute_seconds_count{kind=\"rollout\"}") : -1;
    double req_s = m.body ? api_metric(m.body, "dsr_request_seconds_sum{route=\"/rollout\",status=\"200\"}") : -1;
    TH_CHECK(t, roll_n >= 1 && roll_s > 0 && roll_s <= req_s, "compute seconds %g over %g rollouts, requests %g s",
             roll_s, roll_n, req_s);
    http_resp_free(&r);
    http_resp_free(&m);
}

static void test_started(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    TH_CHECK(t, a->p.pid > 0, "dsrd did not come up (log: %s)", a->p.log_path);
}

static void test_clean_shutdown(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    int rc = dsrd_stop(&a->p);
    TH_CHECK(t, rc == 0, "dsrd exit status %d on SIGTERM (log: %s)", rc, a->p.log_path);
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct api_test a = {0};
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--image-root",
                          "tests/fixtures/image-processing", NULL};
    dsrd_start(&a.p, argv[0], args);
    th_run(&a.t, "started", test_started);
    if (a.p.pid > 0) {
        a.cases = th_open_fixture("janus-tiny/cases.safetensors");
        th_run(&a.t, "health_model_tokenize", test_health_model_tokenize);
        th_run(&a.t, "logprobs_gen_fixture", test_logprobs_gen_fixture);
        th_run(&a.t, "logprobs_rg_fixture", test_logprobs_rg_fixture);
        th_run(&a.t, "logprobs_batch_equals_single", test_logprobs_batch_equals_single);
        th_run(&a.t, "score_matches_templates", test_score_matches_templates);
        th_run(&a.t, "png_score_and_openrlhf", test_png_score_and_openrlhf);
        th_run(&a.t, "rollout_greedy_image", test_rollout_greedy_image);
        th_run(&a.t, "rollout_greedy_caption_matches_core", test_rollout_greedy_caption_matches_core);
        th_run(&a.t, "rollout_sampled_and_metrics", test_rollout_sampled_and_metrics);
        th_run(&a.t, "clean_shutdown", test_clean_shutdown);
        st_close(a.cases);
    }
    curl_global_cleanup();
    return th_finish(&a.t, "test_api");
}
