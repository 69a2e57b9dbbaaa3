/* dsr-train with replicas and faults, against real dsrd processes:
 *   - two servers: rollouts hit both (their /metrics), and after the run
 *     both report the learner's policy_version (the replica reloaded);
 *   - the learner is SIGKILLed mid-run and restarted on the same port: the
 *     trainer retries, brings it back to its last checkpoint, and finishes
 *     with one version per step (no update applied twice or lost);
 *   - a LoRA fleet (BF16-held base): the replica follows the learner by
 *     reloading adapter directories only, and then computes the learner's
 *     log-probs exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_support.h"
#include "dsr_client.h"
#include "harness.h"

struct fleet_env {
    char dir[64];
    char prompts[128], ckpt[128];
};

static long version_of(const char *url) {
    struct dsr_client_opts o = {url, NULL, NULL, 10000, 1000};
    struct dsr_call_err e;
    struct dsr_client *c = dsr_client_new(&o, &e);
    json_t *h = NULL;
    long v = c && dsr_health(c, &h, &e) == 0 ? dsr_policy_version(h) : -1;
    json_decref(h);
    dsr_client_free(c);
    return v;
}

static double rollouts_served(const char *url) {
    struct dsr_client_opts o = {url, NULL, NULL, 10000, 1000};
    struct dsr_call_err e;
    struct dsr_client *c = dsr_client_new(&o, &e);
    char *text = NULL;
    double n = c && dsr_metrics(c, &text, &e) == 0
                   ? cs_metric_sum(text, "dsr_requests_total{route=\"/rollout\",status=\"200\"}")
                   : -1;
    free(text);
    dsr_client_free(c);
    return n;
}

/* Records in a JSONL log whose step/policy_version run 1..n / v0+1..v0+n. */
static int consistent_records(const char *path, long v0) {
    char *text = th_read_file(path, NULL);
    int n = 0, ok = text != NULL;
    for (char *line = text ? strtok(text, "\n") : NULL; line && ok; line = strtok(NULL, "\n")) {
        json_t *rec = json_loads(line, 0, NULL);
        n++;
        ok = json_integer_value(json_object_get(rec, "step")) == n &&
             json_integer_value(json_object_get(rec, "policy_version")) == v0 + n &&
             isfinite(json_number_value(json_object_get(rec, "loss")));
        json_decref(rec);
    }
    free(text);
    return ok ? n : -1;
}

static void test_two_servers(struct th *t, void *ctx) {
    struct fleet_env *env = ctx;
    struct dsrd_proc a, b;
    char log_a[160], log_b[160], state[160], log[160];
    cs_path(log_a, sizeof log_a, env->dir, "a.log");
    cs_path(log_b, sizeof log_b, env->dir, "b.log");
    cs_path(state, sizeof state, env->dir, "two.state");
    cs_path(log, sizeof log, env->dir, "two.jsonl");
    if (!TH_CHECK(t, cs_dsrd_start(&a, 0, env->ckpt, log_a, NULL) == 0, "learner starts")) return;
    if (!TH_CHECK(t, cs_dsrd_start(&b, 0, env->ckpt, log_b, NULL) == 0, "replica starts")) {
        cs_dsrd_stop(&a);
        return;
    }
    const char *args[] = {"--server", a.url, "--server", b.url, "--prompts", env->prompts, "--batch-prompts", "2",
                          "--group-size", "2", "--steps", "2", "--seed", "1", "--lr", "1e-3", "--state", state,
                          "--log", log, "--retries", "3", NULL};
    char *err = NULL;
    int rc = cs_run("dsr-train", args, NULL, &err, 300);
    TH_CHECK(t, rc == 0, "dsr-train with two servers exits 0: %s", err ? err : "");
    free(err);
    TH_CHECK(t, consistent_records(log, 0) == 2, "2 consistent records");
    TH_CHECK(t, rollouts_served(a.url) >= 2 && rollouts_served(b.url) >= 2, "both served rollouts (%g, %g)",
             rollouts_served(a.url), rollouts_served(b.url));
    long va = version_of(a.url), vb = version_of(b.url);
    TH_CHECK(t, va == 2 && vb == 2, "replica reloaded the learner's version: learner %ld, replica %ld", va, vb);
    const char *again[] = {"--server", a.url, "--server", b.url, "--prompts", env->prompts, "--batch-prompts", "2",
                           "--group-size", "2", "--steps", "3", "--seed", "1", "--lr", "1e-3", "--state", state,
                           "--log", log, "--resume", "--retries", "3", NULL};
    rc = cs_run("dsr-train", again, NULL, &err, 300);
    TH_CHECK(t, rc == 0, "resumed step exits 0: %s", err ? err : "");
    free(err);
    TH_CHECK(t, version_of(a.url) == 3 && version_of(b.url) == 3, "both at 3 after the resumed step (%ld, %ld)",
             version_of(a.url), version_of(b.url));
    cs_dsrd_stop(&a);
    cs_dsrd_stop(&b);
}

static void test_learner_killed(struct th *t, void *ctx) {
    struct fleet_env *env = ctx;
    struct dsrd_proc a;
    char log_a[160], state[160], log[160], tlog[160];
    cs_path(log_a, sizeof log_a, env->dir, "learner.log");
    cs_path(state, sizeof state, env->dir, "fault.state");
    cs_path(log, sizeof log, env->dir, "fault.jsonl");
    cs_path(tlog, sizeof tlog, env->dir, "trainer.log");
    char ckpt[160];
    cs_path(ckpt, sizeof ckpt, env->dir, "ckpt-fault");
    if (!TH_CHECK(t, cs_dsrd_start(&a, 0, ckpt, log_a, NULL) == 0, "learner starts")) return;
    const char *args[] = {"--server", a.url, "--prompts", env->prompts, "--batch-prompts", "1", "--group-size", "2",
                          "--steps", "5", "--seed", "2", "--lr", "1e-3", "--checkpoint-every", "1", "--state", state,
                          "--log", log, "--retries", "40", "--retry-delay", "0.1", "--retry-max-delay", "0.5",
                          "--retry-max-time", "120", NULL};
    pid_t trainer = cs_spawn("dsr-train", args, tlog);
    /* wait for two committed steps, then kill the learner */
    for (int i = 0; i < 3000 && consistent_records(log, 0) < 2; i++) {
        char *tl = th_read_file(tlog, NULL);
        int failed = tl && strstr(tl, "dsr-train:"); /* it exited with an error */
        free(tl);
        if (failed) break;
        usleep(20000);
    }
    TH_CHECK(t, consistent_records(log, 0) >= 2, "two steps before the kill");
    int port = a.port;
    cs_dsrd_kill(&a);
    usleep(300000);
    TH_CHECK(t, cs_dsrd_start(&a, port, ckpt, log_a, NULL) == 0, "learner restarts on port %d", port);
    int rc = cs_wait(trainer, 300);
    char *tl = th_read_file(tlog, NULL);
    TH_CHECK(t, rc == 0, "trainer finishes after the restart (exit %d): %s", rc, tl ? tl : "");
    /* the restart is seen either as failed calls (retried) or, when it
     * falls between calls, as a version change: either way a reload back
     * to the last checkpoint must follow */
    TH_CHECK(t, tl && (strstr(tl, "retry") || strstr(tl, "re-sync")) && strstr(tl, "reloaded step-"),
             "the trainer noticed the restart and reloaded: %s", tl ? tl : "");
    free(tl);
    TH_CHECK(t, consistent_records(log, 0) == 5, "5 records, versions 1..5 in step order");
    TH_CHECK(t, version_of(a.url) == 5, "learner at version 5 = steps (%ld)", version_of(a.url));
    cs_dsrd_stop(&a);
}

/* /logprobs of a fixed caption and image target on one server. */
static json_t *fixed_logprobs(const char *url) {
    struct dsr_client_opts o = {url, NULL, NULL, 10000, 1000};
    struct dsr_call_err e;
    struct dsr_client *c = dsr_client_new(&o, &e);
    json_t *body = json_pack("{s:[{s:{s:[i,i,i]},s:{s:[i,i,i,i]}},{s:{s:[i,i,i]},s:{s:[i,i,i,i,i]}}]}", "items",
                             "context", "tokens", 256, 40, 41, "target", "tokens", 50, 60, 70, 257, "context",
                             "tokens", 256, 30, 259, "target", "codes", 5, 9, 31, 2, 77);
    json_t *out = NULL;
    if (!c || dsr_call(c, "POST", "/logprobs", body, 0, &out, &e)) out = NULL;
    json_decref(body);
    dsr_client_free(c);
    return out;
}

static void test_lora_fleet(struct th *t, void *ctx) {
    struct fleet_env *env = ctx;
    struct dsrd_proc a, b;
    char log_a[160], log_b[160], state[160], log[160], ckpt[160];
    cs_path(log_a, sizeof log_a, env->dir, "lora-a.log");
    cs_path(log_b, sizeof log_b, env->dir, "lora-b.log");
    cs_path(state, sizeof state, env->dir, "lora.state");
    cs_path(log, sizeof log, env->dir, "lora.jsonl");
    cs_path(ckpt, sizeof ckpt, env->dir, "ckpt-lora");
    const char *lora[] = {"--lora-rank", "4", "--lora-alpha", "16", "--weights-dtype", "bf16", NULL};
    if (!TH_CHECK(t, cs_dsrd_start(&a, 0, ckpt, log_a, lora) == 0, "LoRA learner starts")) return;
    if (!TH_CHECK(t, cs_dsrd_start(&b, 0, ckpt, log_b, lora) == 0, "LoRA replica starts")) {
        cs_dsrd_stop(&a);
        return;
    }
    json_t *before = fixed_logprobs(a.url);
    const char *args[] = {"--server", a.url, "--server", b.url, "--prompts", env->prompts, "--batch-prompts", "2",
                          "--group-size", "2", "--steps", "2", "--seed", "3", "--lr", "1e-2", "--state", state,
                          "--log", log, "--retries", "3", NULL};
    char *err = NULL;
    int rc = cs_run("dsr-train", args, NULL, &err, 300);
    TH_CHECK(t, rc == 0, "dsr-train on a LoRA fleet exits 0: %s", err ? err : "");
    free(err);
    TH_CHECK(t, consistent_records(log, 0) == 2, "2 consistent records");
    TH_CHECK(t, version_of(a.url) == 2 && version_of(b.url) == 2, "replica at the learner's version (%ld, %ld)",
             version_of(a.url), version_of(b.url));
    /* the checkpoints the replica reloaded are adapter directories: no base weights */
    char path[512];
    int adapters = 0, full = 0;
    DIR *d = opendir(ckpt);
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        if (strncmp(e->d_name, "step-", 5) != 0) continue;
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s/adapter_model.safetensors", ckpt, e->d_name);
        adapters += stat(path, &sb) == 0 && sb.st_size < 200000;
        snprintf(path, sizeof path, "%s/%s/model.safetensors", ckpt, e->d_name);
        full += stat(path, &sb) == 0;
    }
    if (d) closedir(d);
    TH_CHECK(t, adapters >= 1 && full == 0, "the replica reloaded adapter directories (%d), never base weights (%d)",
             adapters, full);
    json_t *la = fixed_logprobs(a.url), *lb = fixed_logprobs(b.url);
    if (TH_CHECK(t, la && lb && before, "logprobs answered")) {
        json_t *ia = json_object_get(la, "items"), *ib = json_object_get(lb, "items"), *i0 = json_object_get(before, "items");
        int equal = 1, moved = 0;
        for (size_t k = 0; k < json_array_size(ia); k++) {
            double x = json_number_value(json_object_get(json_array_get(ia, k), "sum"));
            double y = json_number_value(json_object_get(json_array_get(ib, k), "sum"));
            double z = json_number_value(json_object_get(json_array_get(i0, k), "sum"));
            equal &= x == y;
            moved |= fabs(x - z) > 1e-6;
        }
        TH_CHECK(t, json_array_size(ia) == 2 && equal, "replica's log-probs equal the learner's exactly");
        TH_CHECK(t, moved, "two LoRA steps moved the learner's log-probs");
    }
    json_decref(before);
    json_decref(la);
    json_decref(lb);
    cs_dsrd_stop(&a);
    cs_dsrd_stop(&b);
}

int main(void) {
    cs_init();
    dsr_client_global_init();
    struct th t = {0};
    struct fleet_env env;
    memset(&env, 0, sizeof env);
    if (cs_tmpdir(env.dir, sizeof env.dir) != 0) return 1;
    cs_path(env.prompts, sizeof env.prompts, env.dir, "prompts.txt");
    cs_path(env.ckpt, sizeof env.ckpt, env.dir, "ckpt");
    FILE *f = fopen(env.prompts, "w");
    if (f) {
        fputs("a red circle\na green tree\nblue sky\na cat\n", f);
        fclose(f);
    }
    cs_run_test(&t, "two_servers", test_two_servers, &env);
    cs_run_test(&t, "learner_killed", test_learner_killed, &env);
    cs_run_test(&t, "lora_fleet", test_lora_fleet, &env);
    cs_rmtree(env.dir);
    dsr_client_global_cleanup();
    return th_finish(&t, "test_client_fleet");
}
