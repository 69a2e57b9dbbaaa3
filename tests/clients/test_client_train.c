/* dsr-train end to end against a real dsrd (janus-tiny): the client-built
 * contexts reproduce the rollouts' own log-probs, 3 GRPO and 3 SimPO steps
 * advance policy_version once per step with finite JSONL records and
 * reloadable checkpoints, --resume continues a finished state, and GRPO
 * through the API raises (lowers) the log-prob of a completion given a
 * positive (negative) advantage.  The experiment's options: --reward
 * command (a fake grader), --reward shuffled, --directions gen and
 * --eval-cmd / --eval-every with --resume. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client_support.h"
#include "dsr_client.h"
#include "harness.h"

struct train_env {
    struct dsrd_proc d;
    struct dsr_client *c;
    char dir[64];
    char images[128], prompts[128], ckpt[128];
};

static json_t *post(struct th *t, struct train_env *env, const char *path, json_t *req) {
    json_t *resp = NULL;
    struct dsr_call_err e;
    int admin = strcmp(path, "/update") == 0 || strcmp(path, "/reload") == 0 || strcmp(path, "/checkpoint") == 0;
    if (dsr_call(env->c, "POST", path, req, admin, &resp, &e) != 0) TH_CHECK(t, 0, "POST %s: %s", path, e.msg);
    json_decref(req);
    return resp;
}

static long health_version(struct train_env *env) {
    json_t *h = NULL;
    struct dsr_call_err e;
    if (dsr_health(env->c, &h, &e) != 0) return -1;
    long v = dsr_policy_version(h);
    json_decref(h);
    return v;
}

/* The context a /rollout returns (what dsr-train cites in /update) is the
 * one the server sampled from: teacher-forcing a rollout's completion on it
 * gives back its own log-probs.  For a scored generation group, rg_target
 * after rg_context (the image's placeholders filled from its codes) gives
 * back its reward, R_G. */
static void test_contexts_match(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    struct dsr_call_err e;
    char img[160];
    cs_path(img, sizeof img, env->images, "im0.png");
    for (int task = 0; task < 2; task++) {
        json_t *req = task == 0 ? json_pack("{s:s, s:{s:s}, s:i, s:i, s:b}", "task", "generation", "prompt", "text",
                                            "a red circle", "n", 2, "seed", 3, "score", 1)
                                : json_pack("{s:s, s:o, s:s, s:i, s:i, s:i}", "task", "understanding", "image",
                                            dsr_image_png_file(img, 0, &e), "question", "Describe this image.", "n",
                                            2, "max_tokens", 4, "seed", 3);
        json_t *ro = post(t, env, "/rollout", req);
        const json_t *r0 = json_array_get(json_object_get(ro, "rollouts"), 0);
        if (!TH_CHECK(t, r0 != NULL, "rollout task %d", task)) {
            json_decref(ro);
            continue;
        }
        json_t *context = json_incref(json_object_get(json_object_get(ro, "context"), "tokens"));
        TH_CHECK(t, json_array_size(context) > 0, "task %d: the response has context.tokens", task);
        json_t *item = task == 0 ? json_pack("{s:{s:o}, s:{s:O}}", "context", "tokens", context, "target", "codes",
                                             json_object_get(r0, "codes"))
                                 : json_pack("{s:{s:o}, s:o, s:{s:O}}", "context", "tokens", context, "image",
                                             dsr_image_png_file(img, 0, &e), "target", "tokens",
                                             json_object_get(r0, "tokens"));
        json_t *lp = post(t, env, "/logprobs", json_pack("{s:[o]}", "items", item));
        const json_t *got = json_object_get(json_array_get(json_object_get(lp, "items"), 0), "logprobs");
        const json_t *want = json_object_get(r0, "logprobs");
        double worst = json_array_size(got) == json_array_size(want) && json_array_size(want) > 0 ? 0 : INFINITY;
        for (size_t i = 0; i < json_array_size(want) && isfinite(worst); i++)
            worst = fmax(worst, fabs(json_number_value(json_array_get(got, i)) - json_number_value(json_array_get(want, i))));
        TH_CHECK(t, worst < 1e-4, "task %d: teacher-forced log-probs on the returned context differ by %g", task, worst);
        json_decref(lp);
        if (task == 0) {
            json_t *rg = json_pack("{s:O, s:{s:O}, s:O}", "context", json_object_get(ro, "rg_context"), "image",
                                   "codes", json_object_get(r0, "codes"), "target", json_object_get(ro, "rg_target"));
            lp = post(t, env, "/logprobs", json_pack("{s:[o]}", "items", rg));
            double mean = json_number_value(json_object_get(json_array_get(json_object_get(lp, "items"), 0), "mean"));
            double reward = json_number_value(json_object_get(r0, "reward"));
            TH_CHECK(t, json_object_get(ro, "rg_context") && fabs(mean - reward) < 1e-4,
                     "R_G from rg_context/rg_target %g, the rollout's reward %g", mean, reward);
            json_decref(lp);
        }
        json_decref(ro);
    }
}

/* Checks every record of a JSONL log; returns the number of records. */
static int check_log(struct th *t, const char *path, long first_version, const char *algorithm) {
    char *text = th_read_file(path, NULL);
    if (!TH_CHECK(t, text != NULL, "log %s missing", path)) return 0;
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *rec = json_loads(line, 0, NULL);
        n++;
        TH_CHECK(t, json_is_object(rec), "record %d is JSON", n);
        TH_CHECK(t, json_integer_value(json_object_get(rec, "step")) == n &&
                        json_integer_value(json_object_get(rec, "policy_version")) == first_version + n,
                 "record %d: step and policy_version advance by one", n);
        TH_CHECK(t, strcmp(json_string_value(json_object_get(rec, "algorithm")), algorithm) == 0, "algorithm");
        static const char *const keys[] = {"und_reward_mean", "und_reward_std", "gen_reward_mean", "gen_reward_std",
                                           "loss", "grad_norm", "clip_fraction", "kl", "seconds"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const json_t *v = json_object_get(rec, keys[k]);
            TH_CHECK(t, json_is_number(v) && isfinite(json_number_value(v)), "record %d: %s finite", n, keys[k]);
        }
        json_decref(rec);
    }
    free(text);
    return n;
}

/* The "checkpoint" name logged with record n (1-based) of a JSONL log, in out. */
static void logged_checkpoint(const char *path, int n, char *out, size_t size) {
    out[0] = 0;
    char *text = th_read_file(path, NULL);
    int k = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (++k != n) continue;
        json_t *rec = json_loads(line, 0, NULL);
        const char *name = json_string_value(json_object_get(rec, "checkpoint"));
        snprintf(out, size, "%s", name ? name : "");
        json_decref(rec);
    }
    free(text);
}

static int run_trainer(struct train_env *env, const char *algorithm, const char *state, const char *log,
                       const char *steps, int resume) {
    const char *args[48] = {"--server", env->d.url, "--images", env->images, "--prompts", env->prompts,
                            "--batch-images", "1", "--batch-prompts", "1", "--group-size", "3", "--max-tokens", "4",
                            "--steps", steps, "--seed", "7", "--lr", "1e-3", "--algorithm", algorithm,
                            "--checkpoint-every", "1", "--state", state, "--log", log, "--retries", "3"};
    int n = 30;
    if (resume) args[n++] = "--resume";
    args[n] = NULL;
    char *err = NULL;
    int rc = cs_run("dsr-train", args, NULL, &err, 300);
    if (rc != 0) fprintf(stderr, "dsr-train %s: exit %d\n%s\n", algorithm, rc, err ? err : "");
    free(err);
    return rc;
}

static void test_grpo_simpo_e2e(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    long v0 = health_version(env);
    char state[160], log[160];
    cs_path(state, sizeof state, env->dir, "grpo.state");
    cs_path(log, sizeof log, env->dir, "grpo.jsonl");
    TH_CHECK(t, run_trainer(env, "grpo", state, log, "3", 0) == 0, "GRPO run exits 0");
    TH_CHECK(t, check_log(t, log, v0, "grpo") == 3, "3 GRPO records");
    TH_CHECK(t, health_version(env) == v0 + 3, "learner advanced 3 versions");

    /* a finished state resumes to a longer run: one more step */
    TH_CHECK(t, run_trainer(env, "grpo", state, log, "4", 1) == 0, "--resume exits 0");
    TH_CHECK(t, check_log(t, log, v0, "grpo") == 4, "4 GRPO records after resume");
    long v1 = health_version(env);
    TH_CHECK(t, v1 == v0 + 4, "learner at %ld", v1);

    cs_path(state, sizeof state, env->dir, "simpo.state");
    cs_path(log, sizeof log, env->dir, "simpo.jsonl");
    TH_CHECK(t, run_trainer(env, "simpo", state, log, "3", 0) == 0, "SimPO run exits 0");
    TH_CHECK(t, check_log(t, log, v1, "simpo") == 3, "3 SimPO records");
    TH_CHECK(t, health_version(env) == v1 + 3, "learner advanced 3 more versions");

    /* checkpoints (named per update, so both runs' share the directory) load
     * back with their versions */
    char name2[128], name3[128];
    logged_checkpoint(log, 2, name2, sizeof name2);
    logged_checkpoint(log, 3, name3, sizeof name3);
    TH_CHECK(t, strncmp(name2, "step-000002-", 12) == 0 && strncmp(name3, "step-000003-", 12) == 0,
             "records name their checkpoints: '%s', '%s'", name2, name3);
    json_t *r = post(t, env, "/reload", json_pack("{s:s}", "path", name2));
    TH_CHECK(t, dsr_policy_version(r) == v1 + 2, "%s (SimPO run) reloads at %ld", name2, dsr_policy_version(r));
    json_decref(r);
    r = post(t, env, "/reload", json_pack("{s:s}", "path", name3));
    TH_CHECK(t, dsr_policy_version(r) == v1 + 3, "%s reloads at %ld", name3, dsr_policy_version(r));
    json_decref(r);
}

/* ---- the experiment's options (--reward, --directions, --eval-cmd) ---- */

/* dsr-train on env's data, 1 image + 1 prompt per step, groups of 3, with
 * the extra arguments (NULL-terminated). */
static int run_trainer_with(struct train_env *env, const char *state, const char *log, const char *steps,
                            const char *const *extra) {
    const char *args[64] = {"--server", env->d.url, "--images", env->images, "--prompts", env->prompts,
                            "--batch-images", "1", "--batch-prompts", "1", "--group-size", "3", "--max-tokens", "4",
                            "--steps", steps, "--seed", "7", "--lr", "1e-3", "--state", state, "--log", log,
                            "--retries", "3"};
    int n = 26;
    for (; extra && *extra && n < 63; extra++) args[n++] = *extra;
    args[n] = NULL;
    char *err = NULL;
    int rc = cs_run("dsr-train", args, NULL, &err, 300);
    if (rc != 0) fprintf(stderr, "dsr-train: exit %d\n%s\n", rc, err ? err : "");
    free(err);
    return rc;
}

/* Every line of a JSONL file as a JSON array (non-JSON lines as null). */
static json_t *read_jsonl(const char *path) {
    json_t *all = json_array();
    char *text = th_read_file(path, NULL);
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        json_array_append_new(all, j ? j : json_null());
    }
    free(text);
    return all;
}

static double num(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* Checks the per-step fields every record of a run with this reward source
 * and these directions has. */
static void check_step_record(struct th *t, const json_t *rec, int n, long v0, const char *source, const char *dirs) {
    TH_CHECK(t, json_integer_value(json_object_get(rec, "step")) == n &&
                    json_integer_value(json_object_get(rec, "policy_version")) == v0 + n,
             "record %d: step and version", n);
    TH_CHECK(t, strcmp(str(rec, "reward_source"), source) == 0, "record %d: reward_source '%s'", n,
             str(rec, "reward_source"));
    TH_CHECK(t, strcmp(str(rec, "directions"), dirs) == 0, "record %d: directions '%s'", n, str(rec, "directions"));
    static const char *const keys[] = {"loss", "kl", "clip_fraction", "grad_norm", "seconds", "wall_time",
                                       "zero_std_frac"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        TH_CHECK(t, isfinite(num(rec, keys[k])), "record %d: %s finite", n, keys[k]);
    static const char *const per_dir[] = {"reward_mean", "reward_std", "reward_group_std", "zero_std_frac"};
    for (int d = 0; d < 2; d++) {
        const char *prefix = d == 0 ? "und" : "gen";
        int want = strstr(dirs, prefix) != NULL;
        for (size_t k = 0; k < sizeof per_dir / sizeof per_dir[0]; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s_%s", prefix, per_dir[k]);
            TH_CHECK(t, want ? isfinite(num(rec, key)) : json_object_get(rec, key) == NULL, "record %d: %s %s", n, key,
                     want ? "finite" : "absent");
        }
        double z = num(rec, d == 0 ? "und_zero_std_frac" : "gen_zero_std_frac");
        TH_CHECK(t, !want || (z >= 0 && z <= 1), "record %d: zero-variance fraction %g", n, z);
    }
}

/* --reward command with the fake grader: every rollout graded once with the
 * right request, the grader's rewards in the log beside the self-rewards,
 * generated images written for it and removed after. */
static void test_reward_command_e2e(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    long v0 = health_version(env);
    char state[160], log[160], glog[160], cmd[400];
    cs_path(state, sizeof state, env->dir, "cmd.state");
    cs_path(log, sizeof log, env->dir, "cmd.jsonl");
    cs_path(glog, sizeof glog, env->dir, "grader.jsonl");
    snprintf(cmd, sizeof cmd, "python3 tests/trainer/fake_grader.py --log %s", glog);
    const char *extra[] = {"--reward", "command", "--reward-cmd", cmd, NULL};
    TH_CHECK(t, run_trainer_with(env, state, log, "2", extra) == 0, "run exits 0");
    TH_CHECK(t, health_version(env) == v0 + 2, "learner advanced 2 versions");
    json_t *recs = read_jsonl(log), *asked = read_jsonl(glog);
    if (!TH_CHECK(t, json_array_size(recs) == 2 && json_array_size(asked) == 12,
                  "2 records (%zu), 2 steps x 2 groups x 3 rollouts graded (%zu)", json_array_size(recs),
                  json_array_size(asked)))
        goto done;
    char images_abs[4096];
    if (!realpath(env->images, images_abs)) images_abs[0] = 0;
    char gen_dir[4096] = "";
    for (int k = 0; k < 2; k++) {
        const json_t *rec = json_array_get(recs, (size_t)k);
        check_step_record(t, rec, k + 1, v0, "command", "und,gen");
        TH_CHECK(t, isfinite(num(rec, "und_self_reward_mean")) && isfinite(num(rec, "gen_self_reward_mean")),
                 "record %d: the self-rewards logged beside the grader's", k + 1);
        double und = 0, gen = 0;
        for (int i = 0; i < 6; i++) {
            const json_t *a = json_array_get(asked, (size_t)(k * 6 + i));
            const json_t *req = json_object_get(a, "request"), *seen = json_object_get(a, "seen"),
                         *reply = json_object_get(a, "reply");
            int understanding = i < 3; /* groups in plan order: the image, then the prompt */
            TH_CHECK(t, strcmp(str(req, "task"), understanding ? "understanding" : "generation") == 0, "task %d.%d",
                     k, i);
            TH_CHECK(t, json_is_true(json_object_get(seen, "abs")) && json_is_true(json_object_get(seen, "exists")) &&
                            json_is_true(json_object_get(seen, "png")),
                     "request %d.%d: an absolute path to a PNG that exists while graded", k, i);
            const char *image = str(req, "image");
            if (understanding) {
                TH_CHECK(t, images_abs[0] && strncmp(image, images_abs, strlen(images_abs)) == 0,
                         "caption graded against the data image: %s", image);
                und += num(reply, "reward") / 3;
            } else {
                const char *caption = str(req, "caption");
                TH_CHECK(t, !strcmp(caption, "a red circle") || !strcmp(caption, "a green tree") ||
                                !strcmp(caption, "blue sky"),
                         "generated image graded against its prompt: '%s'", caption);
                gen += json_is_true(json_object_get(reply, "pass")) / 3.0;
                snprintf(gen_dir, sizeof gen_dir, "%s", image);
                char *slash = strrchr(gen_dir, '/');
                if (slash) *slash = 0;
            }
        }
        TH_CHECK(t, fabs(num(rec, "und_reward_mean") - und) < 1e-9, "step %d: und_reward_mean %g is the grader's %g",
                 k + 1, num(rec, "und_reward_mean"), und);
        TH_CHECK(t, fabs(num(rec, "gen_reward_mean") - gen) < 1e-9, "step %d: gen_reward_mean %g is the grader's %g",
                 k + 1, num(rec, "gen_reward_mean"), gen);
    }
    struct stat st;
    TH_CHECK(t, gen_dir[0] && stat(gen_dir, &st) != 0, "the generated images' directory %s is gone", gen_dir);

    /* --no-self-score: the server is not asked for the self-reward */
    cs_path(state, sizeof state, env->dir, "cmd-noself.state");
    cs_path(log, sizeof log, env->dir, "cmd-noself.jsonl");
    snprintf(cmd, sizeof cmd, "python3 tests/trainer/fake_grader.py");
    const char *noself[] = {"--reward", "command", "--reward-cmd", cmd, "--no-self-score", "--directions", "und", NULL};
    TH_CHECK(t, run_trainer_with(env, state, log, "1", noself) == 0, "--no-self-score run exits 0");
    json_t *one = read_jsonl(log);
    const json_t *r1 = json_array_get(one, 0);
    TH_CHECK(t, json_array_size(one) == 1 && isfinite(num(r1, "und_reward_mean")) &&
                    !json_object_get(r1, "und_self_reward_mean") && !json_object_get(r1, "gen_reward_mean"),
             "graded understanding only, no self-reward logged");
    json_decref(one);

    /* a grader error stops the run, naming the item */
    char *err = NULL;
    cs_path(state, sizeof state, env->dir, "cmd-bad.state");
    snprintf(cmd, sizeof cmd, "python3 tests/trainer/fake_grader.py --mode error --after 4");
    const char *args[] = {"--server", env->d.url, "--prompts", env->prompts, "--batch-prompts", "1", "--group-size",
                          "3", "--steps", "2", "--state", state, "--log", log, "--reward", "command", "--reward-cmd",
                          cmd, NULL};
    int rc = cs_run("dsr-train", args, NULL, &err, 300);
    TH_CHECK(t, rc == 1 && err && strstr(err, "cannot grade this one") && strstr(err, "image 2 of 3 for prompt"),
             "exit %d: %s", rc, err ? err : "");
    free(err);
done:
    json_decref(recs);
    json_decref(asked);
}

static void test_reward_shuffled_e2e(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    long v0 = health_version(env);
    char state[160], log[160];
    cs_path(state, sizeof state, env->dir, "shuffled.state");
    cs_path(log, sizeof log, env->dir, "shuffled.jsonl");
    const char *extra[] = {"--reward", "shuffled", NULL};
    TH_CHECK(t, run_trainer_with(env, state, log, "2", extra) == 0, "run exits 0");
    TH_CHECK(t, health_version(env) == v0 + 2, "learner advanced 2 versions");
    json_t *recs = read_jsonl(log);
    TH_CHECK(t, json_array_size(recs) == 2, "2 records");
    for (size_t k = 0; k < json_array_size(recs); k++) {
        const json_t *rec = json_array_get(recs, k);
        check_step_record(t, rec, (int)k + 1, v0, "shuffled", "und,gen");
        TH_CHECK(t, !json_object_get(rec, "und_self_reward_mean"), "no separate self-reward: it is the reward");
    }
    json_decref(recs);
}

static void test_directions_gen_e2e(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    long v0 = health_version(env);
    char state[160], log[160];
    cs_path(state, sizeof state, env->dir, "gen.state");
    cs_path(log, sizeof log, env->dir, "gen.jsonl");
    const char *extra[] = {"--directions", "gen", NULL}; /* --images stays configured */
    TH_CHECK(t, run_trainer_with(env, state, log, "2", extra) == 0, "run exits 0");
    json_t *recs = read_jsonl(log);
    TH_CHECK(t, json_array_size(recs) == 2, "2 records");
    for (size_t k = 0; k < json_array_size(recs); k++) {
        const json_t *rec = json_array_get(recs, k);
        check_step_record(t, rec, (int)k + 1, v0, "self", "gen");
        TH_CHECK(t, json_integer_value(json_object_get(rec, "gen_groups")) == 1 && !json_object_get(rec, "und_groups") &&
                        json_integer_value(json_object_get(rec, "samples")) == 3,
                 "record %zu: only the prompt's group of 3 trained", k + 1);
    }
    json_decref(recs);
}

/* "E3" for an eval of step 3, "X3" for a failed one, "S3" for step 3. */
static void record_kinds(const json_t *recs, char *out, size_t size) {
    out[0] = 0;
    size_t i;
    const json_t *rec;
    json_array_foreach(recs, i, rec) {
        char k = json_object_get(rec, "eval") ? 'E' : json_object_get(rec, "eval_error") ? 'X' : 'S';
        size_t n = strlen(out);
        snprintf(out + n, size - n, "%s%c%lld", n ? " " : "", k, (long long)json_integer_value(json_object_get(rec, "step")));
    }
}

static void test_eval_e2e(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    long v0 = health_version(env);
    char state[160], log[160], kinds[256];
    cs_path(state, sizeof state, env->dir, "eval.state");
    cs_path(log, sizeof log, env->dir, "eval.jsonl");
    const char *cmd = "echo evaluating >&2; echo 'some progress'; "
                      "echo '{\"at\": '$DSR_STEP', \"version\": '$DSR_POLICY_VERSION', \"server\": \"'$DSR_SERVER'\"}'";
    const char *extra[] = {"--eval-cmd", cmd, "--eval-every", "2", NULL};
    TH_CHECK(t, run_trainer_with(env, state, log, "3", extra) == 0, "run exits 0");
    json_t *recs = read_jsonl(log);
    record_kinds(recs, kinds, sizeof kinds);
    TH_CHECK(t, strcmp(kinds, "E0 S1 S2 E2 S3 E3") == 0, "evals at 0, every 2 and the last step: %s", kinds);
    size_t i;
    const json_t *rec;
    json_array_foreach(recs, i, rec) {
        const json_t *ev = json_object_get(rec, "eval");
        if (!ev) continue;
        long step = (long)json_integer_value(json_object_get(rec, "step"));
        TH_CHECK(t, json_integer_value(json_object_get(rec, "policy_version")) == v0 + step &&
                        num(ev, "at") == step && num(ev, "version") == v0 + step &&
                        strcmp(str(ev, "server"), env->d.url) == 0 && num(rec, "seconds") >= 0,
                 "eval of step %ld: the command saw DSR_STEP, DSR_POLICY_VERSION and DSR_SERVER", step);
    }
    json_decref(recs);

    /* resume to 4 steps: step 3's eval is not run again; a resume of the
     * finished run adds nothing */
    const char *resume[] = {"--eval-cmd", cmd, "--eval-every", "2", "--resume", NULL};
    TH_CHECK(t, run_trainer_with(env, state, log, "4", resume) == 0, "resume exits 0");
    TH_CHECK(t, run_trainer_with(env, state, log, "4", resume) == 0, "second resume exits 0");
    recs = read_jsonl(log);
    record_kinds(recs, kinds, sizeof kinds);
    TH_CHECK(t, strcmp(kinds, "E0 S1 S2 E2 S3 E3 S4 E4") == 0, "after resuming: %s", kinds);
    json_decref(recs);

    /* a failing evaluation is logged and training goes on */
    cs_path(state, sizeof state, env->dir, "eval-fail.state");
    cs_path(log, sizeof log, env->dir, "eval-fail.jsonl");
    const char *failing[] = {"--eval-every", "1", "--eval-cmd",
                             "if [ \"$DSR_STEP\" = 1 ]; then echo boom; exit 4; fi; echo '{\"ok\": true}'", NULL};
    TH_CHECK(t, run_trainer_with(env, state, log, "2", failing) == 0, "run with a failing eval exits 0");
    recs = read_jsonl(log);
    record_kinds(recs, kinds, sizeof kinds);
    TH_CHECK(t, strcmp(kinds, "E0 S1 X1 S2 E2") == 0, "records %s", kinds);
    const json_t *x = json_array_get(recs, 2);
    TH_CHECK(t, strstr(str(x, "eval_error"), "status 4") != NULL, "eval_error '%s'", str(x, "eval_error"));
    json_decref(recs);
}

/* Sum of log-probs of fixed codes after gen_context(prompt). */
static double codes_logprob(struct th *t, struct train_env *env, json_t *context, json_t *codes) {
    json_t *lp = post(t, env, "/logprobs",
                      json_pack("{s:[{s:{s:O}, s:{s:O}}]}", "items", "context", "tokens", context, "target", "codes", codes));
    double s = json_number_value(json_object_get(json_array_get(json_object_get(lp, "items"), 0), "sum"));
    json_decref(lp);
    return s;
}

static double grpo_step(struct th *t, struct train_env *env, json_t *context, json_t *codes, double advantage,
                        const char *key) {
    json_t *u = post(t, env, "/update",
                     json_pack("{s:s, s:s, s:[{s:s, s:{s:O}, s:{s:O}, s:f}], s:{s:f, s:f}}", "algorithm", "grpo",
                               "idempotency_key", key, "samples", "task", "generation", "context", "tokens", context,
                               "completion", "codes", codes, "advantage", advantage, "hyper", "lr", 1e-2,
                               "max_grad_norm", 0.0));
    double loss = json_number_value(json_object_get(u, "loss"));
    json_decref(u);
    return loss;
}

static void test_learning_direction(struct th *t, void *ctx) {
    struct train_env *env = ctx;
    json_t *ro = post(t, env, "/rollout", json_pack("{s:s, s:{s:s}, s:i, s:i}", "task", "generation", "prompt", "text",
                                                    "a blue square", "n", 1, "seed", 11));
    json_t *context = json_incref(json_object_get(json_object_get(ro, "context"), "tokens"));
    json_t *codes = json_incref(json_object_get(json_array_get(json_object_get(ro, "rollouts"), 0), "codes"));
    json_decref(ro);
    if (!TH_CHECK(t, context && json_array_size(codes) > 0, "fixed completion")) {
        json_decref(context);
        json_decref(codes);
        return;
    }
    double before = codes_logprob(t, env, context, codes);
    grpo_step(t, env, context, codes, 1.0, "learning-up-1");
    double up = codes_logprob(t, env, context, codes);
    TH_CHECK(t, up > before, "positive advantage raises log-prob: %.6f -> %.6f", before, up);
    grpo_step(t, env, context, codes, -1.0, "learning-down-1");
    grpo_step(t, env, context, codes, -1.0, "learning-down-2");
    double down = codes_logprob(t, env, context, codes);
    TH_CHECK(t, down < up, "negative advantage lowers log-prob: %.6f -> %.6f", up, down);
    json_decref(context);
    json_decref(codes);
}

int main(void) {
    cs_init();
    dsr_client_global_init();
    struct th t = {0};
    struct train_env envs, *env = &envs;
    memset(env, 0, sizeof *env);
    char log[128];
    if (cs_tmpdir(env->dir, sizeof env->dir) != 0) return 1;
    cs_path(log, sizeof log, env->dir, "dsrd.log");
    cs_path(env->images, sizeof env->images, env->dir, "images");
    cs_path(env->prompts, sizeof env->prompts, env->dir, "prompts.txt");
    cs_path(env->ckpt, sizeof env->ckpt, env->dir, "ckpt");
    if (mkdir(env->images, 0755) != 0) return 1;
    for (int i = 0; i < 3; i++) {
        char name[32], path[200];
        snprintf(name, sizeof name, "im%d.png", i);
        cs_path(path, sizeof path, env->images, name);
        cs_write_png(path, 32, 32, (uint32_t)(i + 1));
    }
    FILE *f = fopen(env->prompts, "w");
    if (f) {
        fputs("a red circle\na green tree\nblue sky\n", f);
        fclose(f);
    }
    if (cs_dsrd_start(&env->d, 0, env->ckpt, log, NULL) != 0) {
        th_check_at(&t, __FILE__, __LINE__, 0, "dsrd did not start");
        return th_finish(&t, "test_client_train");
    }
    struct dsr_client_opts o = {env->d.url, NULL, NULL, 120000, 2000};
    struct dsr_call_err e;
    env->c = dsr_client_new(&o, &e);
    cs_run_test(&t, "contexts_match", test_contexts_match, env);
    cs_run_test(&t, "grpo_simpo_e2e", test_grpo_simpo_e2e, env);
    cs_run_test(&t, "learning_direction", test_learning_direction, env);
    cs_run_test(&t, "reward_command_e2e", test_reward_command_e2e, env);
    cs_run_test(&t, "reward_shuffled_e2e", test_reward_shuffled_e2e, env);
    cs_run_test(&t, "directions_gen_e2e", test_directions_gen_e2e, env);
    cs_run_test(&t, "eval_e2e", test_eval_e2e, env);
    dsr_client_free(env->c);
    cs_dsrd_stop(&env->d);
    cs_rmtree(env->dir);
    dsr_client_global_cleanup();
    return th_finish(&t, "test_client_train");
}
