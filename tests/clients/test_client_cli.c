/* The `dsr` CLI against a live dsrd (janus-tiny fixture): health, score in
 * both directions equal to the /score numbers, rollouts (captions; images
 * and a decodable contact sheet), update --file, --json output, and bad
 * arguments / unreachable servers / server 4xx giving non-zero exits with
 * messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_support.h"
#include "dsr_client.h"
#include "harness.h"
#include "image/png_io.h"

struct cli_env {
    struct dsrd_proc d;
    struct dsr_client *c;
    char dir[64]; /* cs_tmpdir paths are short */
    char img[128], notpng[128];
};

/* Runs dsr --server URL args...; returns the exit status. */
static int dsr(struct cli_env *env, const char *const *args, char **out, char **err) {
    const char *argv[40] = {"--server", env->d.url};
    int n = 2;
    for (; *args && n < 38; args++) argv[n++] = *args;
    argv[n] = NULL;
    return cs_run("dsr", argv, out, err, 120);
}

static void test_health(struct th *t, void *ctx) {
    struct cli_env *env = ctx;
    char *out = NULL, *err = NULL;
    const char *a[] = {"health", NULL};
    int rc = dsr(env, a, &out, &err);
    TH_CHECK(t, rc == 0 && out && strstr(out, "ok") && strstr(out, "policy_version=0"), "health: rc %d out %s", rc, out);
    free(out);
    free(err);
    const char *j[] = {"--json", "health", NULL};
    rc = dsr(env, j, &out, &err);
    json_t *v = out ? json_loads(out, 0, NULL) : NULL;
    TH_CHECK(t, rc == 0 && json_is_object(v) && strcmp(json_string_value(json_object_get(v, "status")), "ok") == 0 &&
                    dsr_policy_version(v) == 0,
             "--json health parseable: %s", out ? out : "");
    json_decref(v);
    free(out);
    free(err);
}

/* Reward of one /score item computed through the client library. */
static double api_score(struct th *t, struct cli_env *env, json_t *item) {
    json_t *req = json_pack("{s:[o]}", "items", item), *resp = NULL;
    struct dsr_call_err e;
    int rc = dsr_score(env->c, req, &resp, &e);
    json_decref(req);
    TH_CHECK(t, rc == 0, "/score: %s", e.msg);
    double r = json_number_value(json_object_get(json_array_get(json_object_get(resp, "items"), 0), "reward"));
    json_decref(resp);
    return r;
}

static void test_score(struct th *t, void *ctx) {
    struct cli_env *env = ctx;
    struct dsr_call_err e;
    char *out = NULL, *err = NULL;
    const char *u[] = {"--json", "score", "--image", env->img, "--response", "a red circle", NULL};
    int rc = dsr(env, u, &out, &err);
    json_t *v = out ? json_loads(out, 0, NULL) : NULL;
    double cli_ru = json_number_value(json_object_get(json_array_get(json_object_get(v, "items"), 0), "reward"));
    json_t *item = json_pack("{s:s, s:o, s:{s:s}}", "task", "understanding", "image",
                             dsr_image_png_file(env->img, 0, &e), "response", "text", "a red circle");
    double api_ru = api_score(t, env, item);
    TH_CHECK(t, rc == 0 && isfinite(cli_ru) && cli_ru < 0 && cli_ru == api_ru, "R_U cli %g == api %g (rc %d, %s)",
             cli_ru, api_ru, rc, err ? err : "");
    json_decref(v);
    free(out);
    free(err);

    const char *g[] = {"--json", "score", "--prompt", "a red circle", "--image", env->img, NULL};
    rc = dsr(env, g, &out, &err);
    v = out ? json_loads(out, 0, NULL) : NULL;
    double cli_rg = json_number_value(json_object_get(json_array_get(json_object_get(v, "items"), 0), "reward"));
    item = json_pack("{s:s, s:{s:s}, s:o}", "task", "generation", "prompt", "text", "a red circle", "image",
                     dsr_image_png_file(env->img, 0, &e));
    double api_rg = api_score(t, env, item);
    TH_CHECK(t, rc == 0 && isfinite(cli_rg) && cli_rg == api_rg, "R_G cli %g == api %g", cli_rg, api_rg);
    json_decref(v);
    free(out);
    free(err);

    const char *h[] = {"score", "--image", env->img, "--response", "a red circle", NULL};
    rc = dsr(env, h, &out, &err);
    char want[64];
    snprintf(want, sizeof want, "R_U %.6f", api_ru);
    TH_CHECK(t, rc == 0 && out && strstr(out, want), "human output has '%s': %s", want, out);
    free(out);
    free(err);
}

static void test_rollout_captions(struct th *t, void *ctx) {
    struct cli_env *env = ctx;
    char *out = NULL, *err = NULL;
    const char *a[] = {"--json", "rollout", "--image", env->img, "-n", "3", "--max-tokens", "4", "--seed", "5", NULL};
    int rc = dsr(env, a, &out, &err);
    json_t *v = out ? json_loads(out, 0, NULL) : NULL;
    const json_t *rs = json_object_get(v, "rollouts");
    int ok = rc == 0 && json_array_size(rs) == 3;
    for (size_t i = 0; ok && i < 3; i++) {
        const json_t *r = json_array_get(rs, i);
        ok = json_is_string(json_object_get(r, "text")) && isfinite(json_number_value(json_object_get(r, "reward"))) &&
             json_array_size(json_object_get(r, "tokens")) >= 1 && json_array_size(json_object_get(r, "tokens")) <= 4;
    }
    TH_CHECK(t, ok, "3 captions with rewards (rc %d): %s", rc, err ? err : "");
    json_decref(v);
    free(out);
    free(err);
    const char *h[] = {"rollout", "--image", env->img, "-n", "2", "--max-tokens", "3", "--seed", "5", NULL};
    rc = dsr(env, h, &out, &err);
    TH_CHECK(t, rc == 0 && out && strstr(out, "[0] R_U=") && strstr(out, "[1] R_U="), "human captions: %s", out);
    free(out);
    free(err);
}

static void test_rollout_images(struct th *t, void *ctx) {
    struct cli_env *env = ctx;
    char outdir[300];
    snprintf(outdir, sizeof outdir, "%s/gen", env->dir);
    char *out = NULL, *err = NULL;
    const char *a[] = {"rollout", "--prompt", "a red circle", "-n", "3", "--seed", "2", "--out", outdir, NULL};
    int rc = dsr(env, a, &out, &err);
    TH_CHECK(t, rc == 0 && out && strstr(out, "[2] R_G=") && strstr(out, "contact-sheet.png"), "rc %d: %s %s", rc,
             out ? out : "", err ? err : "");
    free(out);
    free(err);
    int side = 0;
    for (int i = 0; i < 3; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/rollout-%02d.png", outdir, i);
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        struct dsr_err e;
        TH_CHECK(t, png_decode_file_rgb8(path, 0, NULL, &rgb, &w, &h, &e) == 0 && w == h && w > 0, "%s decodes", path);
        side = w;
        free(rgb);
    }
    char path[400];
    snprintf(path, sizeof path, "%s/contact-sheet.png", outdir);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    struct dsr_err e;
    TH_CHECK(t, png_decode_file_rgb8(path, 0, NULL, &rgb, &w, &h, &e) == 0 && w > 2 * side && h > 2 * side,
             "contact sheet %dx%d decodes (images %d px)", w, h, side);
    free(rgb);
}

static void test_update_file(struct th *t, void *ctx) {
    struct cli_env *env = ctx;
    /* one GRPO step on an explicit generation sample */
    json_t *context = json_array();
    for (int i = 0; i < 5; i++) json_array_append_new(context, json_integer(65 + i));
    json_array_append_new(context, json_integer(259)); /* BOI */
    json_t *req = json_pack("{s:s, s:s, s:[{s:s, s:{s:o}, s:{s:[i,i,i,i]}, s:f}], s:{s:f}}", "algorithm", "grpo",
                            "idempotency_key", "cli-test-update-1", "samples", "task", "generation", "context",
                            "tokens", context, "completion", "codes", 1, 2, 3, 4, "advantage", 1.0, "hyper", "lr", 1e-3);
    char path[300];
    snprintf(path, sizeof path, "%s/req.json", env->dir);
    json_dump_file(req, path, 0);
    json_decref(req);
    char *out = NULL, *err = NULL;
    const char *a[] = {"--json", "update", "--file", path, NULL};
    int rc = dsr(env, a, &out, &err);
    json_t *v = out ? json_loads(out, 0, NULL) : NULL;
    TH_CHECK(t, rc == 0 && dsr_policy_version(v) == 1 && isfinite(json_number_value(json_object_get(v, "loss"))),
             "update --file applied (rc %d): %s %s", rc, out ? out : "", err ? err : "");
    json_decref(v);
    free(out);
    free(err);
    /* the same key again: the first answer, no second step */
    const char *b[] = {"update", "--file", path, NULL};
    rc = dsr(env, b, &out, &err);
    TH_CHECK(t, rc == 0 && out && strstr(out, "policy_version 1"), "idempotent replay: %s", out);
    free(out);
    free(err);
}

static void test_bad_args(struct th *t, void *ctx) {
    struct cli_env *env = ctx;
    struct {
        const char *args[8];
        int want_rc;
        const char *want_msg;
    } cases[] = {
        {{"score", "--image", NULL}, 2, "missing value"},
        {{"score", "--image", env->img, NULL}, 2, "exactly one of"},
        {{"rollout", "--prompt", "x", "--question", "q", NULL}, 2, "--question"},
        {{"rollout", "--image", env->img, "-n", "zero", NULL}, 2, "bad value"},
        {{"frobnicate", NULL}, 2, "unknown command"},
        {{NULL}, 2, "usage"},
        {{"update", "--file", "/nonexistent.json", NULL}, 2, "not a JSON object"},
        {{"score", "--image", "/nonexistent.png", "--response", "x", NULL}, 1, "cannot open"},
        {{"score", "--image", env->notpng, "--response", "x", NULL}, 1, "HTTP 400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = dsr(env, cases[i].args, &out, &err);
        TH_CHECK(t, rc == cases[i].want_rc && err && strstr(err, cases[i].want_msg), "case %zu: rc %d, stderr: %s", i,
                 rc, err ? err : "");
        free(out);
        free(err);
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", cs_free_port());
    const char *a[] = {"--server", url, "health", NULL};
    char *err = NULL;
    int rc = cs_run("dsr", a, NULL, &err, 30);
    TH_CHECK(t, rc == 1 && err && strstr(err, "transport error"), "unreachable server: rc %d %s", rc, err);
    free(err);
    const char *h[] = {"rollout", "--help", NULL};
    char *out = NULL;
    rc = cs_run("dsr", h, &out, NULL, 30);
    TH_CHECK(t, rc == 0 && out && strstr(out, "--out DIR"), "per-command --help");
    free(out);
}

int main(void) {
    cs_init();
    dsr_client_global_init();
    struct th t = {0};
    struct cli_env envs, *env = &envs;
    memset(env, 0, sizeof *env);
    char log[128];
    if (cs_tmpdir(env->dir, sizeof env->dir) != 0) return 1;
    cs_path(log, sizeof log, env->dir, "dsrd.log");
    cs_path(env->img, sizeof env->img, env->dir, "a.png");
    cs_path(env->notpng, sizeof env->notpng, env->dir, "not.png");
    cs_write_png(env->img, 32, 32, 1);
    FILE *f = fopen(env->notpng, "w");
    if (f) {
        fputs("this is not a png", f);
        fclose(f);
    }
    char ckpt[128];
    cs_path(ckpt, sizeof ckpt, env->dir, "ckpt");
    if (cs_dsrd_start(&env->d, 0, ckpt, log, NULL) != 0) {
        th_check_at(&t, __FILE__, __LINE__, 0, "dsrd did not start");
        return th_finish(&t, "test_client_cli");
    }
    struct dsr_client_opts o = {env->d.url, NULL, NULL, 120000, 2000};
    struct dsr_call_err e;
    env->c = dsr_client_new(&o, &e);
    cs_run_test(&t, "health", test_health, env);
    cs_run_test(&t, "score", test_score, env);
    cs_run_test(&t, "rollout_captions", test_rollout_captions, env);
    cs_run_test(&t, "rollout_images", test_rollout_images, env);
    cs_run_test(&t, "update_file", test_update_file, env);
    cs_run_test(&t, "bad_args", test_bad_args, env);
    dsr_client_free(env->c);
    cs_dsrd_stop(&env->d);
    cs_rmtree(env->dir);
    dsr_client_global_cleanup();
    return th_finish(&t, "test_client_cli");
}
