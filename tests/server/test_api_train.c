/* HTTP API tests of the training routes against a real dsrd serving
 * janus-tiny: /update reproduces the fixture's GRPO loss (grpo_image, explicit
 * samples with old/ref log-probs, beta 0.04) and changes the policy; a
 * repeated idempotency_key never steps twice (also when both calls race);
 * cited rollouts train and unknown ids are 404; checkpoint -> reload restores
 * the exact log-probs and version; paths stay inside --checkpoint-dir; the
 * admin key guards all three routes; updates run while scoring and rollout
 * clients hammer the server; --reference supplies the KL reference; a
 * caption's reward equals /score of its ids. */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"
#define ADMIN "admin-secret"
#define API "api-secret"
#define N_SEQ 4

/* th first, so a test function's struct th * is also its context. */
struct train_test {
    struct th t;
    struct dsrd_proc p;
    struct st_file *cases;
    char ckpt_dir[64];
    long version; /* the server's policy_version as the tests last left it */
    long undone;  /* applied updates that reloads rolled back */
    const char *argv0; /* this binary, to start another dsrd */
};

static long version_of(const struct http_resp *r) {
    return (long)json_integer_value(json_object_get(r->json, "policy_version"));
}

static const char *param_of(const struct http_resp *r) {
    const char *p = json_string_value(json_object_get(json_object_get(r->json, "error"), "param"));
    return p ? p : "";
}

static json_t *floats_json(const float *x, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_real(x[i]));
    return a;
}

/* The grpo_image case as explicit /update samples. */
static json_t *grpo_image_samples(struct train_test *a, bool with_ref) {
    size_t n;
    int32_t *prompt = th_tensor_i32(a->cases, "grpo_image.prompt_ids", &n);
    size_t P = n / N_SEQ;
    int32_t *codes = th_tensor_i32(a->cases, "grpo_image.codes", &n);
    size_t L = n / N_SEQ;
    float *old = th_tensor_f32(a->cases, "grpo_image.old_logps", &n);
    float *ref = th_tensor_f32(a->cases, "grpo_image.ref_logps", &n);
    float *adv = th_tensor_f32(a->cases, "grpo_image.advantages", &n);
    json_t *samples = json_array();
    for (int i = 0; i < N_SEQ; i++) {
        json_t *s = json_pack("{s:s,s:{s:o},s:{s:o},s:f,s:o}", "task", "generation", "context", "tokens",
                              json_ints(prompt + i * P, P), "completion", "codes", json_ints(codes + i * L, L),
                              "advantage", (double)adv[i], "old_logprobs", floats_json(old + i * L, L));
        if (with_ref) json_object_set_new(s, "ref_logprobs", floats_json(ref + i * L, L));
        json_array_append_new(samples, s);
    }
    free(prompt), free(codes), free(old), free(ref), free(adv);
    return samples;
}

/* Sum of log-probs of grpo_image's first completion under the live weights. */
static double probe_logprob(struct train_test *a, long *version) {
    size_t n;
    int32_t *prompt = th_tensor_i32(a->cases, "grpo_image.prompt_ids", &n);
    size_t P = n / N_SEQ;
    int32_t *codes = th_tensor_i32(a->cases, "grpo_image.codes", &n);
    size_t L = n / N_SEQ;
    struct http_resp r;
    http_post_json(&a->p, "/logprobs",
                   json_pack("{s:[{s:{s:o},s:{s:o}}]}", "items", "context", "tokens", json_ints(prompt, P), "target",
                             "codes", json_ints(codes, L)),
                   API, &r);
    free(prompt), free(codes);
    double sum = r.status == 200 ? json_number_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "sum"))
                                 : NAN;
    if (version) *version = version_of(&r);
    http_resp_free(&r);
    return sum;
}

static double fixture_scalar(struct train_test *a, const char *key) {
    size_t n;
    float *v = th_tensor_f32(a->cases, key, &n);
    double x = v[0];
    free(v);
    return x;
}

static void test_admin_key(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    const char *paths[] = {"/update", "/checkpoint", "/reload"};
    const char *keys[] = {NULL, API, "wrong"};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) {
            struct http_resp r;
            http_call(&a->p, "POST", paths[i], "{}", 2, keys[k], NULL, &r);
            TH_CHECK(t, r.status == 401, "%s with key %s: %ld", paths[i], keys[k] ? keys[k] : "(none)", r.status);
            http_resp_free(&r);
        }
}

static void test_update_fixture(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    long v0;
    double before = probe_logprob(a, &v0);
    TH_CHECK(t, v0 == 0, "starts at version 0 (%ld)", v0);
    json_t *req = json_pack("{s:s,s:s,s:o,s:{s:f,s:f,s:f,s:s,s:f}}", "algorithm", "grpo", "idempotency_key", "fixture-1",
                            "samples", grpo_image_samples(a, true), "hyper", "epsilon", 0.2, "epsilon_high", 0.28,
                            "beta", 0.04, "loss_type", "grpo", "lr", 1e-3);
    char *body = json_dumps(req, JSON_COMPACT);
    struct http_resp r, again;
    http_call(&a->p, "POST", "/update", body, strlen(body), ADMIN, NULL, &r);
    if (!TH_CHECK(t, r.status == 200, "update: %ld %s", r.status, r.body)) goto out;
    double loss = json_number_value(json_object_get(r.json, "loss")), want = fixture_scalar(a, "grpo_image.loss_grpo");
    TH_CHECK(t, fabs(loss - want) <= 1e-4 * fmax(1, fabs(want)), "loss %.7f, fixture loss_grpo %.7f", loss, want);
    printf("  /update grpo_image: loss %.7f (fixture %.7f), grad_norm %.4g, kl %.4g\n", loss, want,
           json_number_value(json_object_get(r.json, "grad_norm")), json_number_value(json_object_get(r.json, "kl")));
    TH_CHECK(t, json_integer_value(json_object_get(r.json, "tokens")) == N_SEQ * 64, "tokens %lld",
             (long long)json_integer_value(json_object_get(r.json, "tokens")));
    TH_CHECK(t, json_number_value(json_object_get(r.json, "grad_norm")) > 0 && json_is_number(json_object_get(r.json, "kl")) &&
                    json_is_number(json_object_get(r.json, "clip_fraction")) && json_is_string(json_object_get(r.json, "model")),
             "response fields: %s", r.body);
    TH_CHECK(t, version_of(&r) == 1, "policy_version 1 after the update (%ld)", version_of(&r));
    long v1;
    double after = probe_logprob(a, &v1);
    TH_CHECK(t, v1 == 1 && fabs(after - before) > 1e-4, "logprobs changed: %.6f -> %.6f (v%ld)", before, after, v1);

    /* a replay returns the same bytes and does not step */
    http_call(&a->p, "POST", "/update", body, strlen(body), ADMIN, NULL, &again);
    TH_CHECK(t, again.status == 200 && strcmp(again.body, r.body) == 0, "replay byte-identical:\n%s\n%s", r.body,
             again.body);
    long v2;
    double replayed = probe_logprob(a, &v2);
    TH_CHECK(t, v2 == 1 && replayed == after, "replay did not step: v%ld, %.6f vs %.6f", v2, replayed, after);
    http_resp_free(&again);
    a->version = 1;
out:
    http_resp_free(&r);
    free(body);
    json_decref(req);
}

struct racer {
    struct train_test *a;
    const char *body;
    struct http_resp r;
};

static void *race_main(void *arg) {
    struct racer *x = arg;
    http_call(&x->a->p, "POST", "/update", x->body, strlen(x->body), ADMIN, NULL, &x->r);
    return NULL;
}

/* Two calls with one key at once: one step, the same answer. */
static void test_idempotent_race(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    json_t *req = json_pack("{s:s,s:o,s:{s:f}}", "idempotency_key", "race-1", "samples", grpo_image_samples(a, false),
                            "hyper", "lr", 1e-3);
    char *body = json_dumps(req, JSON_COMPACT);
    struct racer x[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        x[i] = (struct racer){.a = a, .body = body};
        pthread_create(&th[i], NULL, race_main, &x[i]);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        TH_CHECK(t, x[i].r.status == 200 && version_of(&x[i].r) == a->version + 1, "racer %d: %ld %s", i, x[i].r.status,
                 x[i].r.body);
        TH_CHECK(t, x[i].r.body && x[0].r.body && strcmp(x[i].r.body, x[0].r.body) == 0, "racer %d: same answer", i);
    }
    long v;
    probe_logprob(a, &v);
    TH_CHECK(t, v == a->version + 1, "one step for three calls (v%ld)", v);
    a->version = v;
    for (int i = 0; i < 3; i++) http_resp_free(&x[i].r);
    free(body);
    json_decref(req);
}

static void expect_error(struct th *t, struct train_test *a, const char *path, json_t *req, long status,
                         const char *param) {
    struct http_resp r;
    http_post_json(&a->p, path, req, ADMIN, &r);
    TH_CHECK(t, r.status == status && strcmp(param_of(&r), param) == 0, "%s: want %ld on '%s', got %ld %s", path,
             status, param, r.status, r.body);
    http_resp_free(&r);
}

static void test_update_validation(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    /* beta > 0 without ref_logprobs and without --reference */
    expect_error(t, a, "/update", json_pack("{s:o,s:{s:f}}", "samples", grpo_image_samples(a, false), "hyper", "beta", 0.1),
                 400, "samples[0].ref_logprobs");
    json_t *s = grpo_image_samples(a, false);
    json_array_remove(json_object_get(json_array_get(s, 1), "old_logprobs"), 0);
    expect_error(t, a, "/update", json_pack("{s:o}", "samples", s), 400, "samples[1].old_logprobs");
    s = grpo_image_samples(a, false);
    json_array_set_new(json_object_get(json_array_get(s, 2), "old_logprobs"), 5, json_real(0.5));
    expect_error(t, a, "/update", json_pack("{s:o}", "samples", s), 400, "samples[2].old_logprobs[5]");
    expect_error(t, a, "/update", json_pack("{s:o,s:{s:s}}", "samples", grpo_image_samples(a, false), "hyper", "loss_type", "ppo"),
                 400, "hyper.loss_type");
    expect_error(t, a, "/update", json_pack("{s:o,s:{s:f}}", "samples", grpo_image_samples(a, false), "hyper", "lr", -1.0),
                 400, "hyper.lr");
    s = grpo_image_samples(a, false);
    json_object_del(json_array_get(s, 0), "advantage");
    expect_error(t, a, "/update", json_pack("{s:o}", "samples", s), 400, "samples[0].advantage");
    s = grpo_image_samples(a, false);
    json_object_set_new(json_object_get(json_array_get(s, 3), "context"), "tokens", json_pack("[i,i]", 256, 30));
    expect_error(t, a, "/update", json_pack("{s:o}", "samples", s), 400, "samples[3].context");
    expect_error(t, a, "/update", json_pack("{s:s,s:o}", "algorithm", "simpo", "samples", grpo_image_samples(a, false)),
                 400, "samples");
    long v;
    probe_logprob(a, &v);
    TH_CHECK(t, v == a->version, "rejected updates did not step (v%ld)", v);
}

/* Numbers that would corrupt the model are refused: a hyper-parameter out
 * of its range (checked as the float32 it becomes: 1e-50 is 0, 0.99999999999
 * is 1), a log-probability beyond float32.  Each is a 400 naming the field;
 * no step is taken and the weights stay finite. */
static void test_update_never_corrupts(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    double before = probe_logprob(a, NULL);
    static const struct {
        const char *hyper, *param;
    } bad[] = {
        {"{\"adam_eps\": 0}", "hyper.adam_eps"},
        {"{\"adam_eps\": -0.0}", "hyper.adam_eps"},
        {"{\"adam_eps\": 1e-50}", "hyper.adam_eps"},
        {"{\"lr\": 0}", "hyper.lr"},
        {"{\"lr\": 1e-60}", "hyper.lr"},
        {"{\"adam_betas\": [0.9, 0.99999999999]}", "hyper.adam_betas"},
        {"{\"adam_betas\": [0.9999999999, 0.999]}", "hyper.adam_betas"},
        {"{\"lr\": 0.5, \"weight_decay\": 4}", "hyper.weight_decay"},
        {"{\"max_grad_norm\": 1e300}", "hyper.max_grad_norm"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *h = json_loads(bad[i].hyper, 0, NULL);
        if (!TH_CHECK(t, h != NULL, "case %zu parses", i)) continue;
        expect_error(t, a, "/update", json_pack("{s:o,s:o}", "samples", grpo_image_samples(a, false), "hyper", h), 400,
                     bad[i].param);
    }
    const char *lp_keys[] = {"old_logprobs", "ref_logprobs"};
    for (int k = 0; k < 2; k++) {
        json_t *s = grpo_image_samples(a, true);
        json_array_set_new(json_object_get(json_array_get(s, 0), lp_keys[k]), 0, json_real(-1e308));
        char param[64];
        snprintf(param, sizeof param, "samples[0].%s[0]", lp_keys[k]);
        expect_error(t, a, "/update", json_pack("{s:o,s:{s:f}}", "samples", s, "hyper", "beta", 0.04), 400, param);
    }
    json_t *s = grpo_image_samples(a, false);
    json_object_set_new(json_array_get(s, 1), "advantage", json_real(1e300));
    expect_error(t, a, "/update", json_pack("{s:o}", "samples", s), 400, "samples[1].advantage");
    long v;
    double after = probe_logprob(a, &v);
    TH_CHECK(t, v == a->version && isfinite(after) && after == before,
             "refused updates changed nothing: v%ld (want %ld), log-prob %.7f -> %.7f", v, a->version, before, after);
    /* a good step still applies afterwards */
    struct http_resp r;
    http_post_json(&a->p, "/update", json_pack("{s:o,s:{s:f}}", "samples", grpo_image_samples(a, false), "hyper", "lr", 1e-3),
                   ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == a->version + 1, "good update after refused ones: %ld %s", r.status,
             r.body);
    http_resp_free(&r);
    after = probe_logprob(a, &v);
    TH_CHECK(t, isfinite(after) && v == a->version + 1, "finite after a good step: %.7f v%ld", after, v);
    a->version = v;
    http_call(&a->p, "GET", "/metrics", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.body && api_metric(r.body, "dsr_model_finite") == 1, "dsr_model_finite 1");
    http_resp_free(&r);
}

/* Rollout ids are citable; an unknown one is 404 naming it. */
static void test_cited_rollouts(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    struct http_resp g, u, r;
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:s},s:i,s:i,s:b}", "task", "generation", "prompt", "text", "a red circle", "n", 2,
                             "seed", 3, "score", 1),
                   API, &g);
    json_t *codes = json_array();
    for (int i = 0; i < 64; i++) json_array_append_new(codes, json_integer((i * 7) % 96));
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:o},s:i,s:i,s:i,s:b}", "task", "understanding", "image", "codes", codes, "n", 2,
                             "max_tokens", 6, "seed", 4, "score", 1),
                   API, &u);
    if (!TH_CHECK(t, g.status == 200 && u.status == 200, "rollouts: %ld %ld", g.status, u.status)) goto out;
    json_t *gr = json_object_get(g.json, "rollouts"), *ur = json_object_get(u.json, "rollouts");
    json_t *samples = json_pack("[{s:O,s:f},{s:O,s:f},{s:O,s:f},{s:O,s:f}]",
                                "rollout_id", json_object_get(json_array_get(gr, 0), "id"), "advantage", 1.0,
                                "rollout_id", json_object_get(json_array_get(gr, 1), "id"), "advantage", -1.0,
                                "rollout_id", json_object_get(json_array_get(ur, 0), "id"), "advantage", 0.5,
                                "rollout_id", json_object_get(json_array_get(ur, 1), "id"), "advantage", -0.5);
    json_t *bad = json_deep_copy(samples);
    http_post_json(&a->p, "/update", json_pack("{s:o,s:{s:f}}", "samples", samples, "hyper", "lr", 1e-3), ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == a->version + 1, "cited update: %ld %s", r.status, r.body);
    /* cited samples carry their rollout's old log-probs: the ratio is 1 on the first step */
    TH_CHECK(t, json_number_value(json_object_get(r.json, "clip_fraction")) == 0, "clip_fraction 0: %s", r.body);
    if (r.status == 200) a->version++;
    http_resp_free(&r);
    json_object_set_new(json_array_get(bad, 1), "rollout_id", json_string("no-such-rollout"));
    http_post_json(&a->p, "/update", json_pack("{s:o}", "samples", bad), ADMIN, &r);
    const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    TH_CHECK(t, r.status == 404 && strcmp(param_of(&r), "samples[1].rollout_id") == 0 && msg &&
                    strstr(msg, "no-such-rollout"),
             "unknown rollout: %ld %s", r.status, r.body);
    http_resp_free(&r);
out:
    http_resp_free(&g);
    http_resp_free(&u);
}

/* A caption's reward is /score of its ids (R_U from the same tokens), and
 * ids beyond the byte tokenizer do not fail the rollout. */
static void test_caption_reward_from_ids(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    json_t *codes = json_array();
    for (int i = 0; i < 64; i++) json_array_append_new(codes, json_integer((i * 5 + 1) % 96));
    struct http_resp u, s;
    http_post_json(&a->p, "/rollout",
                   json_pack("{s:s,s:{s:O},s:i,s:i,s:i,s:b}", "task", "understanding", "image", "codes", codes, "n", 4,
                             "max_tokens", 8, "seed", 11, "score", 1),
                   API, &u);
    if (!TH_CHECK(t, u.status == 200, "rollout: %ld %s", u.status, u.body)) {
        json_decref(codes);
        http_resp_free(&u);
        return;
    }
    json_t *ro = json_object_get(u.json, "rollouts"), *items = json_array();
    for (size_t g = 0; g < json_array_size(ro); g++)
        json_array_append_new(items, json_pack("{s:s,s:{s:O},s:{s:O}}", "task", "understanding", "image", "codes", codes,
                                               "response", "tokens", json_object_get(json_array_get(ro, g), "tokens")));
    http_post_json(&a->p, "/score", json_pack("{s:o}", "items", items), API, &s);
    int unknown = 0;
    for (size_t g = 0; g < json_array_size(ro); g++) {
        json_t *x = json_array_get(ro, g), *toks = json_object_get(x, "tokens");
        for (size_t k = 0; k < json_array_size(toks); k++) unknown += json_integer_value(json_array_get(toks, k)) >= 262;
        double want = json_number_value(json_object_get(x, "reward"));
        double got = json_number_value(json_object_get(json_array_get(json_object_get(s.json, "items"), g), "reward"));
        TH_CHECK(t, s.status == 200 && fabs(got - want) <= 1e-5 * fmax(1, fabs(want)), "rollout %zu: reward %.7f, /score of its ids %.7f",
                 g, want, got);
        TH_CHECK(t, json_is_string(json_object_get(x, "text")), "rollout %zu has text", g);
    }
    printf("  captions: %d sampled ids beyond the tokenizer's 262 rendered as U+FFFD\n", unknown);
    json_decref(codes);
    http_resp_free(&u);
    http_resp_free(&s);
}

static void test_checkpoint_reload(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    long v_at;
    double at_ckpt = probe_logprob(a, &v_at);
    struct http_resp r;
    http_post_json(&a->p, "/checkpoint", json_pack("{s:s}", "name", "ck-1"), ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v_at && strstr(json_string_value(json_object_get(r.json, "path")), "ck-1"),
             "checkpoint: %ld %s", r.status, r.body);
    http_resp_free(&r);
    char file[160];
    snprintf(file, sizeof file, "%s/ck-1/optimizer.safetensors", a->ckpt_dir);
    TH_CHECK(t, access(file, R_OK) == 0, "optimizer state written (%s)", file);
    expect_error(t, a, "/checkpoint", json_pack("{s:s}", "name", "ck-1"), 400, "name");
    expect_error(t, a, "/checkpoint", json_pack("{s:s}", "name", "../escape"), 400, "name");
    expect_error(t, a, "/checkpoint", json_pack("{s:s}", "name", ".hidden"), 400, "name");

    /* step away, then come back */
    http_post_json(&a->p, "/update", json_pack("{s:o,s:{s:f}}", "samples", grpo_image_samples(a, false), "hyper", "lr", 1e-2),
                   ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v_at + 1, "update after checkpoint: %ld", r.status);
    http_resp_free(&r);
    long v_moved;
    double moved = probe_logprob(a, &v_moved);
    TH_CHECK(t, moved != at_ckpt && v_moved == v_at + 1, "weights moved: %.6f -> %.6f", at_ckpt, moved);
    http_post_json(&a->p, "/reload", json_pack("{s:s}", "path", "ck-1"), ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v_at, "reload: %ld %s", r.status, r.body);
    http_resp_free(&r);
    long v_back;
    double back = probe_logprob(a, &v_back);
    TH_CHECK(t, back == at_ckpt && v_back == v_at, "reloaded log-probs %.7f (at checkpoint %.7f), v%ld", back, at_ckpt,
             v_back);
    a->version = v_back;
    a->undone += 1;

    /* paths stay inside --checkpoint-dir */
    char link[160];
    snprintf(link, sizeof link, "%s/outside", a->ckpt_dir);
    TH_CHECK(t, symlink("/tmp", link) == 0, "symlink");
    expect_error(t, a, "/reload", json_pack("{s:s}", "path", "outside"), 400, "path");
    expect_error(t, a, "/reload", json_pack("{s:s}", "path", "../ck-1"), 400, "path");
    expect_error(t, a, "/reload", json_pack("{s:s}", "path", "/tmp"), 400, "path");
    expect_error(t, a, "/reload", json_pack("{s:s}", "path", "nope"), 404, "path");
    /* not a checkpoint: the error names what is missing, the model is unchanged */
    char empty[160];
    snprintf(empty, sizeof empty, "%s/empty", a->ckpt_dir);
    mkdir(empty, 0755);
    expect_error(t, a, "/reload", json_pack("{s:s}", "path", "empty"), 400, "path");
    long v_after;
    TH_CHECK(t, probe_logprob(a, &v_after) == at_ckpt && v_after == v_at, "failed reloads changed nothing");
}

/* POST /update with an idempotency key; the response in *r. */
static void keyed_update(struct train_test *a, const char *key, struct http_resp *r) {
    http_post_json(&a->p, "/update",
                   json_pack("{s:s,s:s,s:o,s:{s:f}}", "algorithm", "grpo", "idempotency_key", key, "samples",
                             grpo_image_samples(a, false), "hyper", "lr", 1e-3),
                   ADMIN, r);
}

/* Checkpoints carry the idempotency records of the updates they contain:
 * after a reload, a retry of an update the checkpoint holds is answered
 * from its record (same bytes, no step), and one the reload rolled back
 * runs again.  A malformed record file makes the reload fail unchanged. */
static void test_idempotency_follows_reload(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    long v0 = a->version, v;
    struct http_resp kept, r;
    keyed_update(a, "idem-kept", &kept);
    TH_CHECK(t, kept.status == 200 && version_of(&kept) == v0 + 1, "first update: %ld %s", kept.status, kept.body);
    http_post_json(&a->p, "/checkpoint", json_pack("{s:s}", "name", "ck-idem"), ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v0 + 1, "checkpoint: %ld %s", r.status, r.body);
    http_resp_free(&r);
    keyed_update(a, "idem-dropped", &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v0 + 2, "second update: %ld %s", r.status, r.body);
    http_resp_free(&r);

    char path[300];
    snprintf(path, sizeof path, "%s/ck-idem/idempotency.json", a->ckpt_dir);
    size_t n;
    char *records = th_read_file(path, &n);
    TH_CHECK(t, records && strstr(records, "idem-kept") && !strstr(records, "idem-dropped"), "%s: %s", path,
             records ? records : "(missing)");
    free(records);

    http_post_json(&a->p, "/reload", json_pack("{s:s}", "path", "ck-idem"), ADMIN, &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v0 + 1, "reload: %ld %s", r.status, r.body);
    http_resp_free(&r);
    double at_ckpt = probe_logprob(a, &v);
    keyed_update(a, "idem-kept", &r);
    double after_retry = probe_logprob(a, &v);
    TH_CHECK(t, r.status == 200 && kept.body && r.body && strcmp(r.body, kept.body) == 0 && v == v0 + 1 &&
                    after_retry == at_ckpt,
             "retry of an update the checkpoint holds: %ld %s (first: %s), now v%ld", r.status, r.body, kept.body, v);
    http_resp_free(&r);
    keyed_update(a, "idem-dropped", &r);
    TH_CHECK(t, r.status == 200 && version_of(&r) == v0 + 2, "retry of a rolled-back update runs: %ld %s", r.status,
             r.body);
    http_resp_free(&r);
    http_resp_free(&kept);

    /* a checkpoint whose record file is damaged is refused, nothing changes */
    http_post_json(&a->p, "/checkpoint", json_pack("{s:s}", "name", "ck-bad-idem"), ADMIN, &r);
    http_resp_free(&r);
    snprintf(path, sizeof path, "%s/ck-bad-idem/idempotency.json", a->ckpt_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"records\": 3}", f);
        fclose(f);
    }
    double before = probe_logprob(a, &v);
    http_post_json(&a->p, "/reload", json_pack("{s:s}", "path", "ck-idem"), ADMIN, &r); /* move away first */
    http_resp_free(&r);
    http_post_json(&a->p, "/reload", json_pack("{s:s}", "path", "ck-bad-idem"), ADMIN, &r);
    TH_CHECK(t, r.status == 400 && strcmp(param_of(&r), "path") == 0, "damaged records: %ld %s", r.status, r.body);
    http_resp_free(&r);
    long v_after;
    double after = probe_logprob(a, &v_after);
    TH_CHECK(t, v_after == v0 + 1 && after != before, "refused reload left the ck-idem state (v%ld)", v_after);
    a->version = v_after;
    a->undone += 2; /* idem-dropped, then its re-run */
}

static void test_simpo(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    size_t n;
    int32_t *prompt = th_tensor_i32(a->cases, "grpo_image.prompt_ids", &n);
    int32_t *codes = th_tensor_i32(a->cases, "grpo_image.codes", &n);
    json_t *pairs = json_pack("[{s:{s:s,s:{s:o},s:{s:o}},s:{s:s,s:{s:o},s:{s:o}}}]", "chosen", "task", "generation",
                              "context", "tokens", json_ints(prompt, 5), "completion", "codes", json_ints(codes, 64),
                              "rejected", "task", "generation", "context", "tokens", json_ints(prompt, 5), "completion",
                              "codes", json_ints(codes + 64, 64));
    /* the policy's mean log-probs of both completions, just before the step */
    struct http_resp lp;
    http_post_json(&a->p, "/logprobs",
                   json_pack("{s:[{s:{s:o},s:{s:o}},{s:{s:o},s:{s:o}}]}", "items", "context", "tokens",
                             json_ints(prompt, 5), "target", "codes", json_ints(codes, 64), "context", "tokens",
                             json_ints(prompt, 5), "target", "codes", json_ints(codes + 64, 64)),
                   API, &lp);
    json_t *items = json_object_get(lp.json, "items");
    double mean_c = json_number_value(json_object_get(json_array_get(items, 0), "mean"));
    double mean_r = json_number_value(json_object_get(json_array_get(items, 1), "mean"));
    TH_CHECK(t, lp.status == 200 && json_array_size(items) == 2, "logprobs: %ld %s", lp.status, lp.body);
    free(prompt), free(codes);
    struct http_resp r;
    http_post_json(&a->p, "/update",
                   json_pack("{s:s,s:o,s:{s:f,s:f,s:f}}", "algorithm", "simpo", "pairs", pairs, "hyper", "beta", 2.0, "gamma",
                             1.0, "lr", 1e-3),
                   ADMIN, &r);
    /* proto/API.md: loss = −log σ(β·(mean lp(chosen) − mean lp(rejected)) − γ), before the step */
    double z = 2.0 * (mean_c - mean_r) - 1.0;
    double want = z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
    double got = json_number_value(json_object_get(r.json, "loss"));
    TH_CHECK(t, r.status == 200 && version_of(&r) == a->version + 1 && fabs(got - want) <= 1e-5 * fabs(want),
             "simpo: loss %.9g, from /logprobs %.9g (%ld %s)", got, want, r.status, r.body);
    http_resp_free(&lp);
    if (r.status == 200) a->version++;
    http_resp_free(&r);
}

/* ---- updates under load ---------------------------------------------------- */

#define LOAD_CLIENTS 3
#define LOAD_ROUNDS 6
#define LOAD_UPDATES 4

struct loader {
    struct train_test *a;
    int id, failures, backwards;
    char first_error[256];
};

static void load_note(struct loader *c, const struct http_resp *r) {
    if (!c->failures++) snprintf(c->first_error, sizeof c->first_error, "%ld %.200s", r->status, r->body ? r->body : "");
}

static void *loader_main(void *arg) {
    struct loader *c = arg;
    long last = 0;
    for (int k = 0; k < LOAD_ROUNDS; k++) {
        struct http_resp r;
        if (c->id == 0) {
            json_t *s = grpo_image_samples(c->a, false);
            http_post_json(&c->a->p, "/update", json_pack("{s:o,s:{s:f}}", "samples", s, "hyper", "lr", 1e-4), ADMIN, &r);
            if (k >= LOAD_UPDATES - 1) k = LOAD_ROUNDS; /* LOAD_UPDATES in all */
        } else if (c->id == 1) {
            http_post_json(&c->a->p, "/rollout",
                           json_pack("{s:s,s:{s:s},s:i,s:i,s:b}", "task", "generation", "prompt", "text", "a blue square",
                                     "n", 2, "seed", k, "score", 1),
                           API, &r);
        } else {
            json_t *codes = json_array();
            for (int i = 0; i < 64; i++) json_array_append_new(codes, json_integer((i * 3 + k) % 96));
            http_post_json(&c->a->p, "/score",
                           json_pack("{s:[{s:s,s:{s:o},s:{s:s}}]}", "items", "task", "understanding", "image", "codes",
                                     codes, "response", "text", "a blue square"),
                           API, &r);
        }
        if (r.status != 200) load_note(c, &r);
        long v = version_of(&r);
        if (v < last) c->backwards++;
        last = v;
        http_resp_free(&r);
    }
    return NULL;
}

static void test_updates_under_load(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    struct loader c[LOAD_CLIENTS];
    pthread_t th[LOAD_CLIENTS];
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        c[i] = (struct loader){.a = a, .id = i};
        pthread_create(&th[i], NULL, loader_main, &c[i]);
    }
    for (int i = 0; i < LOAD_CLIENTS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        TH_CHECK(t, c[i].failures == 0, "client %d: %d failures, first: %s", i, c[i].failures, c[i].first_error);
        TH_CHECK(t, c[i].backwards == 0, "client %d saw policy_version go backwards", i);
    }
    long v;
    probe_logprob(a, &v);
    TH_CHECK(t, v == a->version + LOAD_UPDATES, "version %ld after %d more updates from %ld", v, LOAD_UPDATES, a->version);
    a->version = v;
    struct http_resp m;
    http_call(&a->p, "GET", "/metrics", NULL, 0, NULL, NULL, &m);
    /* every applied step counts, including those reloads undid */
    char want[64];
    snprintf(want, sizeof want, "\ndsr_updates_applied_total %ld\n", a->version + a->undone);
    TH_CHECK(t, m.body && strstr(m.body, want), "metrics count %ld updates", a->version + a->undone);
    http_resp_free(&m);
}

/* A server with --reference: beta > 0 without ref_logprobs is computed
 * against the start-up weights (KL 0 at the first step), and at beta 0 the
 * KL is still reported; its updates run in micro-batches
 * (--update-memory-budget). */
static void test_reference_server(struct th *t) {
    struct train_test *a = (struct train_test *)t;
    const char *argv0 = a->argv0;
    struct dsrd_proc p;
    /* also micro-batched: one sample per pass within a 64K activation budget */
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--reference",
                          "--update-memory-budget", "64K", NULL};
    if (!TH_CHECK(t, dsrd_start(&p, argv0, args) == 0, "dsrd --reference starts")) return;
    struct dsrd_proc keep = a->p;
    a->p = p;
    struct http_resp r;
    http_post_json(&p, "/update", json_pack("{s:o,s:{s:f,s:f}}", "samples", grpo_image_samples(a, false), "hyper", "beta", 0.04,
                                            "lr", 1e-3),
                   NULL, &r);
    TH_CHECK(t, r.status == 200 && fabs(json_number_value(json_object_get(r.json, "kl"))) < 1e-6,
             "first step against the reference: kl 0: %ld %s", r.status, r.body);
    http_resp_free(&r);
    http_post_json(&p, "/update", json_pack("{s:o,s:{s:f,s:f}}", "samples", grpo_image_samples(a, false), "hyper", "beta", 0.04,
                                            "lr", 1e-3),
                   NULL, &r);
    TH_CHECK(t, r.status == 200 && json_number_value(json_object_get(r.json, "kl")) > 0 && version_of(&r) == 2,
             "second step: kl > 0: %ld %s", r.status, r.body);
    http_resp_free(&r);
    /* beta 0: no penalty, but the KL to the kept start-up weights is still measured */
    http_post_json(&p, "/update", json_pack("{s:o,s:{s:f,s:f}}", "samples", grpo_image_samples(a, false), "hyper", "beta", 0.0,
                                            "lr", 1e-3),
                   NULL, &r);
    TH_CHECK(t, r.status == 200 && json_number_value(json_object_get(r.json, "kl")) > 0 && version_of(&r) == 3,
             "beta 0 with --reference: kl measured: %ld %s", r.status, r.body);
    http_resp_free(&r);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
    a->p = keep;
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct train_test a = {0};
    snprintf(a.ckpt_dir, sizeof a.ckpt_dir, "/tmp/dsr-api-train-XXXXXX");
    if (!mkdtemp(a.ckpt_dir)) return 1;
    const char *args[] = {"--model",   TINY,  "--boi-id",         "259",      "--eoi-id", "260", "--api-key",
                          API,         "--admin-key", ADMIN, "--checkpoint-dir", a.ckpt_dir, NULL};
    int started = dsrd_start(&a.p, argv[0], args);
    if (TH_CHECK(&a.t, started == 0, "dsrd starts (log %s)", a.p.log_path)) {
        a.cases = th_open_fixture("janus-tiny/cases.safetensors");
        th_run(&a.t, "admin_key", test_admin_key);
        th_run(&a.t, "update_fixture", test_update_fixture);
        th_run(&a.t, "idempotent_race", test_idempotent_race);
        th_run(&a.t, "update_validation", test_update_validation);
        th_run(&a.t, "update_never_corrupts", test_update_never_corrupts);
        th_run(&a.t, "cited_rollouts", test_cited_rollouts);
        th_run(&a.t, "caption_reward_from_ids", test_caption_reward_from_ids);
        th_run(&a.t, "checkpoint_reload", test_checkpoint_reload);
        th_run(&a.t, "idempotency_follows_reload", test_idempotency_follows_reload);
        th_run(&a.t, "simpo", test_simpo);
        th_run(&a.t, "updates_under_load", test_updates_under_load);
        a.argv0 = argv[0];
        th_run(&a.t, "reference_server", test_reference_server);
        TH_CHECK(&a.t, dsrd_stop(&a.p) == 0, "dsrd exits cleanly (log %s)", a.p.log_path);
        st_close(a.cases);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", a.ckpt_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", a.ckpt_dir);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_train");
}
