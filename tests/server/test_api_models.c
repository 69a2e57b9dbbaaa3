/* dsrd started on unusual checkpoints, built from janus-tiny in a temporary
 * directory:
 *   - weights holding a NaN: the daemon serves, but /health is 503 naming
 *     the tensor, /metrics says dsr_model_finite 0, /update is refused, a
 *     /reload of such weights is refused and one of good weights recovers;
 *   - no tokenizer.json and special ids that do not fit the built-in byte
 *     tokenizer (bos 1, eos 2, pad 0, BOI 3, EOI 4, image 5): the daemon
 *     starts, serves token-id inputs, and answers text with a 400 saying the
 *     model has no tokenizer;
 *   - --weights-dtype bf16: /model's memory fields, log-probs as a
 *     float32-held daemon's on the same rounded weights, widening on the
 *     first /update; with --kv-dtype bf16 /model says so and a CFG
 *     /rollout runs on the BF16 KV cache;
 *   - generation_config.json with a temperature and a CFG scale: the
 *     rollout defaults. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"

struct models_test {
    struct th t;
    const char *argv0;
    char root[64]; /* temporary directory holding the model directories */
};

static int write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* root/name: janus-tiny's config.json (with text_config ids and
 * image_token_id replaced when ids is given: bos, eos, pad, image) and
 * model.safetensors (with one value of `nan_tensor` set to NaN when given).
 * No generation_config.json, no tokenizer.json. */
static int make_model(struct models_test *a, const char *name, const int *ids, const char *nan_tensor) {
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "%s/%s", a->root, name);
    if (mkdir(dir, 0755) != 0) return -1;
    json_t *cfg = json_load_file(TINY "/config.json", 0, NULL);
    if (!cfg) return -1;
    if (ids) {
        json_t *tc = json_object_get(cfg, "text_config");
        json_object_set_new(tc, "bos_token_id", json_integer(ids[0]));
        json_object_set_new(tc, "eos_token_id", json_integer(ids[1]));
        json_object_set_new(tc, "pad_token_id", json_integer(ids[2]));
        json_object_set_new(cfg, "image_token_id", json_integer(ids[3]));
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = json_dump_file(cfg, path, JSON_INDENT(2));
    json_decref(cfg);
    if (rc) return -1;
    size_t n;
    char *w = th_read_file(TINY "/model.safetensors", &n);
    if (!w) return -1;
    if (nan_tensor) {
        /* the tensor's data offset in the file, from the reader's mapping */
        struct st_file *f = th_open_fixture("janus-tiny/model.safetensors");
        const struct st_tensor *t = st_find(f, nan_tensor);
        if (t && t->dtype == ST_F32) {
            float nan = NAN;
            memcpy(w + (t->data - f->map) + 4 * 3, &nan, 4);
        } else {
            rc = -1;
        }
        st_close(f);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (rc == 0) rc = write_file(path, w, n);
    free(w);
    return rc;
}

static const char *error_message(const struct http_resp *r) {
    const char *m = json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
    return m ? m : "";
}

static const char *error_param(const struct http_resp *r) {
    const char *m = json_string_value(json_object_get(json_object_get(r->json, "error"), "param"));
    return m ? m : "";
}

static void test_nonfinite_weights(struct th *t) {
    struct models_test *a = (struct models_test *)t;
    if (!TH_CHECK(t, make_model(a, "nan", NULL, "lm_head.weight") == 0 && make_model(a, "good", NULL, NULL) == 0,
                  "model directories")) return;
    char model[128];
    snprintf(model, sizeof model, "%s/nan", a->root);
    const char *args[] = {"--model", model, "--boi-id", "259", "--eoi-id", "260", "--checkpoint-dir", a->root, NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start_loaded(&p, a->argv0, args) == 0, "dsrd on NaN weights starts (log %s)", p.log_path))
        return;
    struct http_resp r;
    http_call(&p, "GET", "/health", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t,
             r.status == 503 && strstr(error_message(&r), "not finite") && strstr(error_message(&r), "lm_head.weight"),
             "/health on NaN weights: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_call(&p, "GET", "/metrics", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.body && api_metric(r.body, "dsr_model_finite") == 0, "dsr_model_finite 0");
    http_resp_free(&r);
    http_post_json(&p, "/update",
                   json_pack("{s:[{s:s,s:{s:[i,i,i]},s:{s:[i,i]},s:f}]}", "samples", "task", "understanding", "context",
                             "tokens", 256, 10, 11, "completion", "tokens", 12, 13, "advantage", 1.0),
                   NULL, &r);
    TH_CHECK(t, r.status == 503 && strstr(error_message(&r), "not finite"), "/update on NaN weights: %ld %s", r.status,
             r.body ? r.body : "");
    http_resp_free(&r);
    /* a checkpoint with NaN weights is refused, naming the tensor */
    http_post_json(&p, "/reload", json_pack("{s:s}", "path", "nan"), NULL, &r);
    TH_CHECK(t, r.status == 400 && strcmp(error_param(&r), "path") == 0 && strstr(error_message(&r), "lm_head.weight"),
             "/reload of NaN weights: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_post_json(&p, "/reload", json_pack("{s:s}", "path", "good"), NULL, &r);
    TH_CHECK(t, r.status == 200, "/reload of good weights: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_call(&p, "GET", "/health", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.status == 200, "/health after the reload: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_call(&p, "GET", "/metrics", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.body && api_metric(r.body, "dsr_model_finite") == 1, "dsr_model_finite 1 after the reload");
    http_resp_free(&r);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

static void test_no_tokenizer(struct th *t) {
    struct models_test *a = (struct models_test *)t;
    static const int ids[] = {1, 2, 0, 5}; /* bos, eos, pad, image */
    if (!TH_CHECK(t, make_model(a, "no-tok", ids, NULL) == 0, "model directory")) return;
    char model[128];
    snprintf(model, sizeof model, "%s/no-tok", a->root);
    const char *args[] = {"--model", model, "--boi-id", "3", "--eoi-id", "4", NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, args) == 0, "dsrd without tokenizer starts (log %s)", p.log_path))
        return;
    struct http_resp r;
    http_call(&p, "GET", "/model", NULL, 0, NULL, NULL, &r);
    json_t *sp = json_object_get(r.json, "special_tokens");
    TH_CHECK(t, r.status == 200 && json_integer_value(json_object_get(sp, "bos")) == 1 &&
                    json_integer_value(json_object_get(sp, "boi")) == 3 &&
                    json_is_string(json_object_get(r.json, "tokenizer")) &&
                    strcmp(json_string_value(json_object_get(r.json, "tokenizer")), "none") == 0,
             "/model: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    /* token ids are served */
    http_post_json(&p, "/logprobs",
                   json_pack("{s:[{s:{s:[i,i,i]},s:{s:[i,i,i]}}]}", "items", "context", "tokens", 1, 40, 3, "target",
                             "codes", 7, 8, 9),
                   NULL, &r);
    json_t *lp = json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "logprobs");
    TH_CHECK(t, r.status == 200 && json_array_size(lp) == 3 && json_is_number(json_array_get(lp, 0)),
             "/logprobs by ids: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_post_json(&p, "/rollout",
                   json_pack("{s:s,s:{s:[i,i,i]},s:i,s:i,s:i}", "task", "understanding", "context", "tokens", 1, 40, 41,
                             "n", 2, "max_tokens", 4, "seed", 1),
                   NULL, &r);
    TH_CHECK(t, r.status == 200 && json_array_size(json_object_get(r.json, "rollouts")) == 2,
             "/rollout by ids: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    /* text is a 400 naming the field and saying why */
    struct {
        const char *path;
        json_t *body;
        const char *param;
    } text[] = {
        {"/tokenize", json_pack("{s:s}", "text", "hello"), "text"},
        {"/logprobs", json_pack("{s:[{s:{s:s},s:{s:[i]}}]}", "items", "context", "text", "a", "target", "codes", 1),
         "items[0].context"},
        {"/rollout", json_pack("{s:s,s:{s:s}}", "task", "generation", "prompt", "text", "a red circle"), "prompt"},
    };
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        http_post_json(&p, text[i].path, text[i].body, NULL, &r);
        TH_CHECK(t, r.status == 400 && strcmp(error_param(&r), text[i].param) == 0 &&
                        strstr(error_message(&r), "no tokenizer"),
                 "%s with text: %ld %s", text[i].path, r.status, r.body ? r.body : "");
        http_resp_free(&r);
    }
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

/* One /logprobs call's values (a text target and an image target). */
static int logprobs(struct dsrd_proc *p, double *out, size_t cap, size_t *n) {
    struct http_resp r;
    http_post_json(p, "/logprobs",
                   json_pack("{s:[{s:{s:[i,i,i]},s:{s:[i,i,i]}},{s:{s:[i,i,i]},s:{s:[i,i,i,i]}}]}", "items", "context",
                             "tokens", 256, 40, 259, "target", "codes", 7, 8, 9, "context", "tokens", 256, 10, 11,
                             "target", "tokens", 12, 13, 14, 15),
                   NULL, &r);
    *n = 0;
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *lp = json_object_get(json_array_get(items, i), "logprobs");
        for (size_t k = 0; k < json_array_size(lp) && *n < cap; k++)
            out[(*n)++] = json_real_value(json_array_get(lp, k));
    }
    int ok = r.status == 200 && *n == 7;
    http_resp_free(&r);
    return ok ? 0 : -1;
}

/* "dtype bytes optimizer" of GET /model's memory, for messages. */
static const char *memory_text(const json_t *m, char *buf, size_t n) {
    if (!m) return "missing";
    const char *dtype = json_string_value(json_object_get(m, "weights_dtype"));
    snprintf(buf, n, "%s %lld %lld", dtype ? dtype : "?",
             (long long)json_integer_value(json_object_get(m, "weights_bytes")),
             (long long)json_integer_value(json_object_get(m, "optimizer_bytes")));
    return buf;
}

static json_t *model_memory(struct dsrd_proc *p) {
    struct http_resp r;
    http_call(p, "GET", "/model", NULL, 0, NULL, NULL, &r);
    json_t *m = json_incref(json_object_get(r.json, "memory"));
    http_resp_free(&r);
    return m;
}

/* --weights-dtype bf16 on a float32 checkpoint: /model says bf16 and counts
 * the bytes; log-probs equal a float32-held daemon's on the same
 * BF16-rounded weights (1e-4: a checkpoint of the bf16 daemon, which holds
 * BF16 matrices and writes them as BF16, serves as the float32 one's
 * model); the first /update widens the trainable matrices (mixed,
 * optimizer bytes reported). */
static void test_bf16_weights(struct th *t) {
    struct models_test *a = (struct models_test *)t;
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--checkpoint-dir", a->root,
                          "--weights-dtype", "bf16", "--kv-dtype", "bf16", NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, args) == 0, "dsrd --weights-dtype bf16 starts (log %s)", p.log_path))
        return;
    char text[128];
    json_t *m = model_memory(&p);
    long long bytes = json_integer_value(json_object_get(m, "weights_bytes"));
    TH_CHECK(t, m && strcmp(json_string_value(json_object_get(m, "weights_dtype")), "bf16") == 0 && bytes > 0 &&
                    json_integer_value(json_object_get(m, "optimizer_bytes")) == 0,
             "/model memory: %s", memory_text(m, text, sizeof text));
    const char *kv = json_string_value(json_object_get(m, "kv_cache_dtype"));
    TH_CHECK(t, kv && !strcmp(kv, "bf16"), "/model memory.kv_cache_dtype %s (--kv-dtype bf16)", kv ? kv : "missing");
    json_decref(m);
    struct http_resp roll;
    http_post_json(&p, "/rollout",
                   json_pack("{s:s,s:{s:[i,i,i,i]},s:i,s:f}", "task", "generation", "context", "tokens", 256, 30, 31,
                             259, "n", 2, "cfg_scale", 3.0),
                   NULL, &roll);
    json_t *rolls = json_object_get(roll.json, "rollouts");
    TH_CHECK(t, roll.status == 200 && json_array_size(rolls) == 2, "/rollout on a BF16 KV cache: %ld %s", roll.status,
             roll.body ? roll.body : "");
    http_resp_free(&roll);
    double got[16], want[16];
    size_t n_got = 0, n_want = 0;
    TH_CHECK(t, logprobs(&p, got, 16, &n_got) == 0, "/logprobs on bf16 weights");
    struct http_resp r;
    http_post_json(&p, "/checkpoint", json_pack("{s:s}", "name", "bf16-held"), NULL, &r);
    TH_CHECK(t, r.status == 200, "/checkpoint: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    /* BF16-held matrices are written as BF16 (lossless, half the bytes), the rest as F32 */
    char path[192];
    snprintf(path, sizeof path, "%s/bf16-held/model.safetensors", a->root);
    struct st_file *f = NULL;
    struct dsr_err err = {{0}};
    if (TH_CHECK(t, st_open(path, &f, &err) == 0, "open the checkpoint: %s", err.msg)) {
        const struct st_tensor *emb = st_find(f, "model.language_model.embed_tokens.weight");
        const struct st_tensor *norm = st_find(f, "model.language_model.norm.weight");
        TH_CHECK(t, emb && emb->dtype == ST_BF16 && norm && norm->dtype == ST_F32, "checkpoint dtypes: %s / %s",
                 emb ? st_dtype_name(emb->dtype) : "missing", norm ? st_dtype_name(norm->dtype) : "missing");
        st_close(f);
    }
    /* the first update: trainable matrices to float32, frozen ones stay BF16 */
    http_post_json(&p, "/update",
                   json_pack("{s:[{s:s,s:{s:[i,i,i]},s:{s:[i,i]},s:f}]}", "samples", "task", "understanding", "context",
                             "tokens", 256, 10, 11, "completion", "tokens", 12, 13, "advantage", 1.0),
                   NULL, &r);
    TH_CHECK(t, r.status == 200, "/update: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    m = model_memory(&p);
    TH_CHECK(t, m && strcmp(json_string_value(json_object_get(m, "weights_dtype")), "mixed") == 0 &&
                    json_integer_value(json_object_get(m, "weights_bytes")) > bytes &&
                    json_integer_value(json_object_get(m, "optimizer_bytes")) > 0,
             "/model memory after /update: %s", memory_text(m, text, sizeof text));
    json_decref(m);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");

    /* the checkpoint, held as float32 */
    char model[128];
    snprintf(model, sizeof model, "%s/bf16-held", a->root);
    const char *f32_args[] = {"--model", model, "--boi-id", "259", "--eoi-id", "260", "--weights-dtype", "f32", NULL};
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, f32_args) == 0, "dsrd on the checkpoint starts (log %s)", p.log_path))
        return;
    m = model_memory(&p);
    TH_CHECK(t, m && strcmp(json_string_value(json_object_get(m, "weights_dtype")), "float32") == 0 &&
                    !strcmp(json_string_value(json_object_get(m, "kv_cache_dtype")), "float32"),
             "float32-held: %s", memory_text(m, text, sizeof text));
    json_decref(m);
    if (TH_CHECK(t, logprobs(&p, want, 16, &n_want) == 0, "/logprobs on float32 weights")) {
        double worst = 0, scale = 0;
        for (size_t i = 0; i < n_want; i++) {
            worst = fmax(worst, fabs(got[i] - want[i]));
            scale = fmax(scale, fabs(want[i]));
        }
        TH_CHECK(t, worst <= 1e-4 * scale, "bf16-held vs float32-held log-probs differ by %g (max |lp| %g)", worst,
                 scale);
    }
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

/* GET /model's "lora" object (new reference; NULL when absent or null). */
static json_t *model_lora(struct dsrd_proc *p) {
    struct http_resp r;
    http_call(p, "GET", "/model", NULL, 0, NULL, NULL, &r);
    json_t *l = json_object_get(r.json, "lora");
    l = json_is_object(l) ? json_incref(l) : NULL;
    http_resp_free(&r);
    return l;
}

/* dsrd with args must exit 1 because the model fails to load; msg gets its
 * log line saying why.  -1 when it did not fail so. */
static int failed_load_message(struct models_test *a, const char *const *args, char *msg, size_t cap) {
    char bin[4096], cmd[8192], log[192];
    msg[0] = 0;
    if (th_build_program("dsrd", bin, sizeof bin)) return -1;
    snprintf(log, sizeof log, "%s/failed-load.log", a->root);
    int len = snprintf(cmd, sizeof cmd, "%s --port 0", bin);
    for (int i = 0; args[i] && len < (int)sizeof cmd - 256; i++) len += snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s'", args[i]);
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>%s", log);
    int st = system(cmd);
    char *text = th_read_file(log, NULL);
    const char *line = text ? strstr(text, "model failed to load: ") : NULL;
    snprintf(msg, cap, "%s", line ? line : (text ? text : ""));
    free(text);
    return WIFEXITED(st) && WEXITSTATUS(st) == 1 && line ? 0 : -1;
}

/* A LoRA daemon end to end (float32-held: the merged checkpoint's base is
 * the same; BF16-held LoRA is test_lora and the fleet test's): /model reports the adapters; an /update trains
 * them; /checkpoint writes an adapter directory; /reload of a full
 * checkpoint is refused; a daemon started with --adapter serves the same
 * log-probs exactly; `dsr merge` makes a full checkpoint serving them to
 * 1e-4; an adapter that disagrees with the flags fails the load by name. */
static void test_lora(struct th *t) {
    struct models_test *a = (struct models_test *)t;
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--checkpoint-dir", a->root,
                          "--lora-rank", "4", "--lora-targets", "q_proj,v_proj,down_proj,generation_head.vision_head", NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, args) == 0, "dsrd --lora-rank 4 starts (log %s)", p.log_path)) return;
    json_t *l = model_lora(&p);
    json_t *tg = json_object_get(l, "targets");
    TH_CHECK(t, l && json_integer_value(json_object_get(l, "rank")) == 4 &&
                    json_number_value(json_object_get(l, "alpha")) == 8.0 &&
                    json_number_value(json_object_get(l, "scale")) == 2.0 && json_array_size(tg) == 4 &&
                    !strcmp(json_string_value(json_array_get(tg, 2)), "down_proj") &&
                    !strcmp(json_string_value(json_array_get(tg, 3)), "generation_head.vision_head"),
             "/model lora");
    json_decref(l);
    struct http_resp r;
    http_call(&p, "GET", "/model", NULL, 0, NULL, NULL, &r);
    /* per layer: q 4·(64+64) + v 4·(64+32) + down 4·(128+64) = 1664; 2 layers; the head's vision_head
     * 4·(64+96) = 640 */
    TH_CHECK(t, json_integer_value(json_object_get(json_object_get(r.json, "parameters"), "trainable")) == 3968,
             "trainable parameters are the adapters': %s", r.body ? r.body : "");
    http_resp_free(&r);
    double base[16], trained[16], other[16];
    size_t n = 0;
    TH_CHECK(t, logprobs(&p, base, 16, &n) == 0, "/logprobs");
    http_post_json(&p, "/update",
                   json_pack("{s:[{s:s,s:{s:[i,i,i]},s:{s:[i,i]},s:f},{s:s,s:{s:[i,i,i]},s:{s:[i,i,i]},s:f}],"
                             "s:{s:f}}",
                             "samples", "task", "understanding", "context", "tokens", 256, 10, 11, "completion",
                             "tokens", 12, 13, "advantage", 1.0, "task", "generation", "context", "tokens", 256, 40,
                             259, "completion", "codes", 7, 8, 9, "advantage", 1.0, "hyper", "lr", 0.05),
                   NULL, &r);
    TH_CHECK(t, r.status == 200, "/update: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    json_t *m = model_memory(&p);
    /* AdamW state for 3968 adapter floats: gradient + 2 moments */
    TH_CHECK(t, m && json_integer_value(json_object_get(m, "optimizer_bytes")) < 3 * 3968 * 4 + 4096,
             "optimizer state only for the adapters");
    json_decref(m);
    TH_CHECK(t, logprobs(&p, trained, 16, &n) == 0 && trained[3] != base[3], "the update moved the log-probs");
    http_post_json(&p, "/checkpoint", json_pack("{s:s}", "name", "lora-1"), NULL, &r);
    TH_CHECK(t, r.status == 200, "/checkpoint: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_post_json(&p, "/checkpoint", json_pack("{s:s}", "name", "lora-1b"), NULL, &r);
    http_resp_free(&r);
    http_post_json(&p, "/reload", json_pack("{s:s}", "path", "bf16-held"), NULL, &r);
    TH_CHECK(t, r.status == 400 && strstr(error_message(&r), "reloads adapter directories"),
             "/reload of a full checkpoint on a LoRA daemon: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    http_post_json(&p, "/reload", json_pack("{s:s}", "path", "lora-1b"), NULL, &r);
    TH_CHECK(t, r.status == 200, "/reload of an adapter: %ld %s", r.status, r.body ? r.body : "");
    http_resp_free(&r);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");

    char adapter[160], merged[160], path[224];
    snprintf(adapter, sizeof adapter, "%s/lora-1", a->root);
    snprintf(merged, sizeof merged, "%s/merged", a->root);
    snprintf(path, sizeof path, "%s/adapter_config.json", adapter);
    TH_CHECK(t, access(path, R_OK) == 0, "the checkpoint is an adapter directory");
    const char *with_adapter[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--adapter", adapter, NULL};
    if (TH_CHECK(t, dsrd_start(&p, a->argv0, with_adapter) == 0, "dsrd --adapter starts (log %s)", p.log_path)) {
        TH_CHECK(t, logprobs(&p, other, 16, &n) == 0 && memcmp(other, trained, sizeof(double) * n) == 0,
                 "--adapter serves the trained log-probs exactly");
        l = model_lora(&p);
        TH_CHECK(t, l && json_integer_value(json_object_get(l, "rank")) == 4 &&
                        json_array_size(json_object_get(l, "targets")) == 4 &&
                        strstr(json_string_value(json_object_get(l, "adapter")), "lora-1"),
                 "/model lora from the adapter's config");
        json_decref(l);
        http_call(&p, "GET", "/health", NULL, 0, NULL, NULL, &r);
        TH_CHECK(t, json_integer_value(json_object_get(r.json, "policy_version")) == 1, "policy_version from the adapter: %s",
                 r.body ? r.body : "");
        http_resp_free(&r);
        TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
    }
    char bin[4096], cmd[8192];
    if (th_build_program("dsr", bin, sizeof bin) == 0) {
        snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s --out %s --weights-dtype f32 >/dev/null", bin, TINY,
                 adapter, merged);
        TH_CHECK(t, system(cmd) == 0, "dsr merge exits 0: %s", cmd);
        const char *full[] = {"--model", merged, "--boi-id", "259", "--eoi-id", "260", "--weights-dtype", "f32", NULL};
        if (TH_CHECK(t, dsrd_start(&p, a->argv0, full) == 0, "dsrd on the merged checkpoint starts (log %s)",
                     p.log_path)) {
            double worst = 0, scale = 0;
            TH_CHECK(t, logprobs(&p, other, 16, &n) == 0, "/logprobs");
            for (size_t i = 0; i < n; i++) {
                worst = fmax(worst, fabs(other[i] - trained[i]));
                scale = fmax(scale, fabs(trained[i]));
            }
            TH_CHECK(t, worst <= 1e-4 * scale, "merged vs adapter log-probs differ by %g (max |lp| %g)", worst, scale);
            TH_CHECK(t, model_lora(&p) == NULL, "a merged model has no adapters");
            TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
        }
        snprintf(cmd, sizeof cmd, "%s merge --model %s --adapter %s --out %s 2>/dev/null", bin, TINY, adapter, merged);
        TH_CHECK(t, WEXITSTATUS(system(cmd)) == 1, "dsr merge refuses an existing --out");
    }
    char msg[1024];
    const char *disagree[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--adapter", adapter,
                              "--lora-rank", "8", NULL};
    TH_CHECK(t, failed_load_message(a, disagree, msg, sizeof msg) == 0 && strstr(msg, "disagrees with the --lora-* flags") &&
                    strstr(msg, "rank"),
             "--adapter vs --lora-rank 8: %s", msg);
    const char *too_big[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--lora-rank", "64", NULL};
    TH_CHECK(t, failed_load_message(a, too_big, msg, sizeof msg) == 0 && strstr(msg, "lora rank: 64 is outside [1, 32]"),
             "--lora-rank 64 on 32-wide projections: %s", msg);
}

/* A rollout's sampled tokens or codes (the group's, concatenated) as JSON text;
 * NULL on failure.  extra: the sampling fields the request gives. */
static char *rollout_samples(struct dsrd_proc *p, const char *task, json_t *extra) {
    int gen = strcmp(task, "generation") == 0;
    json_t *body = json_pack("{s:s,s:{s:[i,i,i]},s:i,s:i,s:i}", "task", task, "context", "tokens", 256, 10,
                             gen ? 259 : 11, "n", 4, "max_tokens", 6, "seed", 3); /* images follow BOI */
    json_object_update(body, extra);
    json_decref(extra);
    struct http_resp r;
    http_post_json(p, "/rollout", body, NULL, &r);
    json_t *all = json_array();
    json_t *ro = json_object_get(r.json, "rollouts");
    const char *key = gen ? "codes" : "tokens";
    for (size_t i = 0; i < json_array_size(ro); i++)
        json_array_append(all, json_object_get(json_array_get(ro, i), key));
    char *text = r.status == 200 && json_array_size(ro) == 4 ? json_dumps(all, JSON_COMPACT) : NULL;
    json_decref(all);
    http_resp_free(&r);
    return text;
}

/* generation_config.json's temperature, top_p, top_k and guidance_scale are
 * the rollout defaults: /model reports them, and a request without them
 * samples what one giving them explicitly samples, and not what temperature 1
 * or no truncation (top_p 1, top_k 0) samples. */
static void test_generation_config_defaults(struct th *t) {
    struct models_test *a = (struct models_test *)t;
    if (!TH_CHECK(t, make_model(a, "gen-defaults", NULL, NULL) == 0, "model directory")) return;
    char model[128], path[192];
    snprintf(model, sizeof model, "%s/gen-defaults", a->root);
    snprintf(path, sizeof path, "%s/generation_config.json", model);
    static const char gen[] = "{\"boi_token_id\": 259, \"eoi_token_id\": 260, \"guidance_scale\": 2.0, "
                              "\"temperature\": 0.25, \"top_p\": 0.5, \"top_k\": 7}";
    if (!TH_CHECK(t, write_file(path, gen, sizeof gen - 1) == 0, "generation_config.json")) return;
    const char *args[] = {"--model", model, NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, args) == 0, "dsrd starts (log %s)", p.log_path)) return;
    struct http_resp r;
    http_call(&p, "GET", "/model", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.status == 200 && json_real_value(json_object_get(r.json, "default_temperature")) == 0.25 &&
                    json_real_value(json_object_get(r.json, "default_cfg_scale")) == 2.0 &&
                    json_real_value(json_object_get(r.json, "default_top_p")) == 0.5 &&
                    json_integer_value(json_object_get(r.json, "default_top_k")) == 7,
             "/model defaults: %s", r.body ? r.body : "");
    http_resp_free(&r);
    static const char *const tasks[] = {"generation", "understanding"};
    for (int i = 0; i < 2; i++) {
        /* the CFG scale is generation's only */
        json_t *cfg = i ? json_object() : json_pack("{s:f}", "cfg_scale", 2.0);
        json_t *given = json_pack("{s:f,s:f,s:i}", "temperature", 0.25, "top_p", 0.5, "top_k", 7);
        json_t *t1 = json_pack("{s:f,s:f,s:i}", "temperature", 1.0, "top_p", 0.5, "top_k", 7);
        json_t *whole = json_pack("{s:f,s:f,s:i}", "temperature", 0.25, "top_p", 1.0, "top_k", 0);
        json_object_update(given, cfg);
        json_object_update(t1, cfg);
        json_object_update(whole, cfg);
        json_decref(cfg);
        char *s_dflt = rollout_samples(&p, tasks[i], json_object());
        char *s_given = rollout_samples(&p, tasks[i], given);
        char *s_t1 = rollout_samples(&p, tasks[i], t1);
        char *s_whole = rollout_samples(&p, tasks[i], whole);
        TH_CHECK(t, s_dflt && s_given && s_t1 && s_whole && strcmp(s_dflt, s_given) == 0 &&
                        strcmp(s_dflt, s_t1) != 0 && strcmp(s_dflt, s_whole) != 0,
                 "%s: default %s, as configured %s, temperature 1 %s, untruncated %s", tasks[i],
                 s_dflt ? s_dflt : "-", s_given ? s_given : "-", s_t1 ? s_t1 : "-", s_whole ? s_whole : "-");
        free(s_dflt);
        free(s_given);
        free(s_t1);
        free(s_whole);
    }
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct models_test a = {.argv0 = argv[0]};
    snprintf(a.root, sizeof a.root, "/tmp/dsr-api-models-XXXXXX");
    if (!mkdtemp(a.root)) return 1;
    th_run(&a.t, "nonfinite_weights", test_nonfinite_weights);
    th_run(&a.t, "no_tokenizer", test_no_tokenizer);
    th_run(&a.t, "bf16_weights", test_bf16_weights);
    th_run(&a.t, "lora", test_lora);
    th_run(&a.t, "generation_config_defaults", test_generation_config_defaults);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", a.root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", a.root);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_models");
}
