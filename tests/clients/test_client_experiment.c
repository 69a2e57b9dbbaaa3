/* dsr-train's experiment options without a server: the shuffled-reward
 * control (a seeded permutation within each group), the per-step reward
 * summary, the external grader's line protocol (against
 * tests/trainer/fake_grader.py, including its failures), the evaluation
 * hook, the new flags, and --seed's reproducibility of the plan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client_support.h"
#include "eval_hook.h"
#include "harness.h"
#include "reward_cmd.h"
#include "reward_shuffle.h"
#include "step_stats.h"
#include "train_config.h"

#define GRADER "python3 tests/trainer/fake_grader.py"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int same(const double *a, const double *b, int n) { return memcmp(a, b, (size_t)n * sizeof *a) == 0; }

static void test_shuffle(struct th *t) {
    enum { G = 8 };
    const double base[G] = {0.5, -1, 2, 3.25, 7, -4, 11, 0};
    double sorted_base[G];
    memcpy(sorted_base, base, sizeof base);
    qsort(sorted_base, G, sizeof *sorted_base, cmp_double);

    /* a permutation of the group's own rewards, for many steps and groups */
    int perm_ok = 1, identity = 0, n = 0;
    for (long step = 1; step <= 50; step++)
        for (int g = 0; g < 4; g++) {
            double r[G];
            memcpy(r, base, sizeof r);
            reward_shuffle_group(r, G, 7, step, g);
            identity += same(r, base, G);
            n++;
            qsort(r, G, sizeof *r, cmp_double);
            perm_ok &= same(r, sorted_base, G);
        }
    TH_CHECK(t, perm_ok, "every shuffle is a permutation of the group's rewards");
    TH_CHECK(t, identity < n / 10, "shuffles move rewards (%d of %d left in place)", identity, n);

    /* reproducible from (seed, step, group); different across steps, groups and seeds */
    double a[G], b[G], c[G], d[G], e[G];
    memcpy(a, base, sizeof a);
    memcpy(b, base, sizeof b);
    memcpy(c, base, sizeof c);
    memcpy(d, base, sizeof d);
    memcpy(e, base, sizeof e);
    reward_shuffle_group(a, G, 7, 3, 1);
    reward_shuffle_group(b, G, 7, 3, 1);
    reward_shuffle_group(c, G, 7, 4, 1);
    reward_shuffle_group(d, G, 7, 3, 2);
    reward_shuffle_group(e, G, 8, 3, 1);
    TH_CHECK(t, same(a, b, G), "same seed, step and group: same permutation");
    TH_CHECK(t, !same(a, c, G), "the next step permutes differently");
    TH_CHECK(t, !same(a, d, G), "another group of the step permutes differently");
    TH_CHECK(t, !same(a, e, G), "another --seed permutes differently");

    /* uniform: over many steps each reward lands in each slot about 1/3 of the time */
    int count[3][3] = {{0}};
    const int steps = 3000;
    for (long step = 0; step < steps; step++) {
        double r[3] = {0, 1, 2};
        reward_shuffle_group(r, 3, 1, step, 0);
        for (int i = 0; i < 3; i++) count[i][(int)r[i]]++;
    }
    int uniform = 1;
    for (int i = 0; i < 3; i++)
        for (int v = 0; v < 3; v++) uniform &= fabs(count[i][v] / (double)steps - 1.0 / 3.0) < 0.04;
    TH_CHECK(t, uniform, "slot 0 got 0/1/2 %d/%d/%d times of %d", count[0][0], count[0][1], count[0][2], steps);
}

static void test_step_stats(struct th *t) {
    /* groups {1,2,3}, {5,5,5}, {0,0,4} */
    const double r[9] = {1, 2, 3, 5, 5, 5, 0, 0, 4};
    struct reward_summary s;
    reward_summary_of(r, 3, 3, &s);
    double sd3 = sqrt(16.0 / 3.0); /* {0,0,4}: mean 4/3, squares 32/3, over n - 1 = 2 */
    TH_CHECK(t, s.groups == 3 && fabs(s.mean - 25.0 / 9.0) < 1e-12, "mean %g", s.mean);
    TH_CHECK(t, fabs(s.group_std - (1.0 + 0.0 + sd3) / 3.0) < 1e-12, "mean within-group std %g", s.group_std);
    TH_CHECK(t, s.zero_std_groups == 1 && fabs(s.zero_std_frac - 1.0 / 3.0) < 1e-12, "one flat group of 3");
    reward_summary_of(r, 0, 3, &s);
    TH_CHECK(t, s.groups == 0 && s.zero_std_frac == 0, "no groups");
}

static void test_reward_protocol(struct th *t) {
    double x = -1;
    char why[400];
    TH_CHECK(t, reward_reply_parse("{\"reward\": 0.25}", &x, why, sizeof why) == 0 && x == 0.25, "reward");
    TH_CHECK(t, reward_reply_parse("{\"pass\": true, \"parsed\": true, \"detected\": []}\r", &x, why, sizeof why) == 0 &&
                    x == 1.0,
             "pass true (dsr world grade --batch's reply) -> 1");
    TH_CHECK(t, reward_reply_parse("{\"pass\": false}", &x, why, sizeof why) == 0 && x == 0.0, "pass false -> 0");
    TH_CHECK(t, reward_reply_parse("{\"reward\": -2, \"pass\": true}", &x, why, sizeof why) == 0 && x == -2,
             "reward wins over pass");
    TH_CHECK(t, reward_reply_parse("{\"error\": \"bad png\"}", &x, why, sizeof why) == -1 && strstr(why, "bad png"),
             "error reply: %s", why);
    const char *bad[] = {"", "nope", "[1]", "3", "{\"reward\": \"high\"}", "{\"pass\": 1}", "{}", "{\"reward\": 1} x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        TH_CHECK(t, reward_reply_parse(bad[i], &x, why, sizeof why) == -1 && why[0], "'%s' rejected", bad[i]);
    }
    char *line = reward_request_line("generation", "/tmp/a b.png", "a \"red\" circle");
    json_t *j = line ? json_loads(line, 0, NULL) : NULL;
    TH_CHECK(t, line && strchr(line, '\n') == line + strlen(line) - 1, "one line, ending in a newline");
    TH_CHECK(t, j && strcmp(json_string_value(json_object_get(j, "task")), "generation") == 0 &&
                    strcmp(json_string_value(json_object_get(j, "image")), "/tmp/a b.png") == 0 &&
                    strcmp(json_string_value(json_object_get(j, "caption")), "a \"red\" circle") == 0,
             "request fields: %s", line ? line : "NULL");
    json_decref(j);
    free(line);
    TH_CHECK(t, reward_request_line("understanding", "/x.png", "\xff\xfe") == NULL, "non-UTF-8 caption refused");
}

/* Asks a fake grader started with extra args; returns the ask's rc. */
static int ask_fake(const char *extra, double timeout_s, const char *task, const char *image, const char *caption,
                    double *reward, struct dsr_err *err) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, GRADER " %s", extra);
    struct reward_cmd g;
    if (reward_cmd_start(&g, cmd, timeout_s, err) != 0) return -2;
    int rc = reward_cmd_ask(&g, task, image, caption, reward, err);
    reward_cmd_stop(&g);
    return rc;
}

static void test_reward_command(struct th *t) {
    char dir[256], png[300], log[300];
    if (!TH_CHECK(t, cs_tmpdir(dir, sizeof dir) == 0, "tmpdir")) return;
    cs_path(png, sizeof png, dir, "im.png");
    cs_path(log, sizeof log, dir, "grader.jsonl");
    cs_write_png(png, 16, 16, 3);
    struct stat st;
    stat(png, &st);

    /* one grader, several requests in one session */
    char cmd[600];
    snprintf(cmd, sizeof cmd, GRADER " --log %s", log);
    struct reward_cmd g;
    struct dsr_err err;
    double r = -1;
    if (!TH_CHECK(t, reward_cmd_start(&g, cmd, 30, &err) == 0, "start: %s", err.msg)) return;
    TH_CHECK(t, reward_cmd_ask(&g, "understanding", png, "a red circle", &r, &err) == 0 && fabs(r - 1.2) < 1e-12,
             "understanding reward len/10 = %g (%s)", r, err.msg);
    TH_CHECK(t, reward_cmd_ask(&g, "generation", png, "blue sky", &r, &err) == 0 && r == (st.st_size % 2 == 0 ? 1 : 0),
             "generation pass -> %g", r);
    TH_CHECK(t, reward_cmd_ask(&g, "understanding", png, "", &r, &err) == 0 && r == 0, "empty caption");
    TH_CHECK(t, g.asked == 3, "3 answered");
    reward_cmd_stop(&g);
    char *text = th_read_file(log, NULL);
    int lines = 0;
    for (char *p = text; p && *p; p++) lines += *p == '\n';
    TH_CHECK(t, lines == 3 && strstr(text, "\"png\": true"), "the grader saw 3 requests for a PNG");
    free(text);

    /* each failure is an error that says what happened */
    err.msg[0] = 0;
    TH_CHECK(t, ask_fake("--mode error", 30, "understanding", png, "x", &r, &err) == -1 &&
                    strstr(err.msg, "cannot grade this one"),
             "{\"error\"} reply: %s", err.msg);
    err.msg[0] = 0;
    TH_CHECK(t, ask_fake("--mode malformed", 30, "understanding", png, "x", &r, &err) == -1 &&
                    strstr(err.msg, "not a JSON object"),
             "malformed reply: %s", err.msg);
    err.msg[0] = 0;
    TH_CHECK(t, ask_fake("--mode exit", 30, "understanding", png, "x", &r, &err) == -1 &&
                    strstr(err.msg, "status 3"),
             "grader exits: %s", err.msg);
    err.msg[0] = 0;
    TH_CHECK(t, ask_fake("--mode silent", 0.5, "understanding", png, "x", &r, &err) == -1 &&
                    strstr(err.msg, "no answer within"),
             "grader hangs: %s", err.msg);
    err.msg[0] = 0;
    struct reward_cmd missing;
    int rc = reward_cmd_start(&missing, "/nonexistent/grader --batch", 30, &err);
    if (rc == 0) {
        rc = reward_cmd_ask(&missing, "generation", png, "x", &r, &err);
        reward_cmd_stop(&missing);
    }
    TH_CHECK(t, rc == -1 && strstr(err.msg, "127"), "a grader that cannot start: %s", err.msg);
    cs_rmtree(dir);
}

static void test_eval_hook(struct th *t) {
    json_t *res = NULL;
    struct dsr_err err;
    const char *cmd =
        "echo progress...; echo '{\"step\": '$DSR_STEP', \"v\": '$DSR_POLICY_VERSION', \"server\": \"'$DSR_SERVER'\", "
        "\"key\": \"'$DSR_API_KEY'\"}'; echo; echo '   '";
    int rc = eval_hook_run(cmd, "http://127.0.0.1:9", "k1", 4, 9, &res, &err);
    TH_CHECK(t, rc == 0 && json_integer_value(json_object_get(res, "step")) == 4 &&
                    json_integer_value(json_object_get(res, "v")) == 9 &&
                    strcmp(json_string_value(json_object_get(res, "server")), "http://127.0.0.1:9") == 0 &&
                    strcmp(json_string_value(json_object_get(res, "key")), "k1") == 0,
             "last non-empty line with the environment (%s)", rc ? err.msg : "");
    json_decref(res);
    res = NULL;
    TH_CHECK(t, eval_hook_run("echo '{\"a\": 1}'; exit 4", "http://x", NULL, 0, 0, &res, &err) == -1 && !res &&
                    strstr(err.msg, "status 4"),
             "non-zero exit: %s", err.msg);
    TH_CHECK(t, eval_hook_run("echo '{\"a\": 1}'; echo done", "http://x", NULL, 0, 0, &res, &err) == -1 &&
                    strstr(err.msg, "'done'"),
             "last line not JSON: %s", err.msg);
    TH_CHECK(t, eval_hook_run("true", "http://x", NULL, 0, 0, &res, &err) == -1 && strstr(err.msg, "no output"),
             "no output: %s", err.msg);
    TH_CHECK(t, eval_hook_run("echo '[1, 2]'", "http://x", NULL, 0, 0, &res, &err) == -1, "an array is not an object");

    TH_CHECK(t, eval_due(0, 5, 12) && eval_due(5, 5, 12) && eval_due(10, 5, 12) && eval_due(12, 5, 12) &&
                    !eval_due(3, 5, 12) && !eval_due(11, 5, 12),
             "due at 0, 5, 10 and the last step 12");
    TH_CHECK(t, eval_due(0, 0, 12) && eval_due(12, 0, 12) && !eval_due(6, 0, 12), "every 0: first and last only");

    char dir[256], log[300];
    if (!TH_CHECK(t, cs_tmpdir(dir, sizeof dir) == 0, "tmpdir")) return;
    cs_path(log, sizeof log, dir, "log.jsonl");
    FILE *f = fopen(log, "w");
    if (f) {
        fputs("{\"eval\": {\"acc\": 0.5}, \"step\": 0, \"policy_version\": 3}\n"
              "{\"step\": 1, \"loss\": 0.1}\n"
              "{\"eval_error\": \"exited with status 1\", \"step\": 1}\n"
              "not json at all \"eval\"\n"
              "{\"eval\": {}, \"step\": 2}\n",
              f);
        fclose(f);
    }
    struct eval_done d;
    TH_CHECK(t, eval_done_load(&d, log, &err) == 0 && d.n == 2 && eval_done_has(&d, 0) && eval_done_has(&d, 2) &&
                    !eval_done_has(&d, 1),
             "logged evals 0 and 2 (a failed one may run again)");
    eval_done_free(&d);
    TH_CHECK(t, eval_done_load(&d, "/nonexistent/log", &err) == 0 && d.n == 0, "no log: nothing done");
    eval_done_free(&d);
    cs_rmtree(dir);
}

static void test_config(struct th *t) {
    struct train_config c;
    struct dsr_err err;
    const char *both[] = {"--images", "d", "--prompts", "p", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, both, &err) == 0 && c.directions == (DIR_UND | DIR_GEN) && c.batch_images == 2 &&
                    c.batch_prompts == 2 && c.reward == REWARD_SELF && c.self_score && !c.eval_cmd,
             "defaults: both directions with data, self rewards, no eval");
    const char *gen[] = {"--images", "d", "--prompts", "p", "--directions", "gen", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, gen, &err) == 0 && c.directions == DIR_GEN && c.batch_images == 0 && c.batch_prompts == 2,
             "--directions gen drops the images");
    const char *und[] = {"--images", "d", "--prompts", "p", "--directions", "understanding", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, und, &err) == 0 && c.directions == DIR_UND && c.batch_prompts == 0, "--directions und");
    const char *gu[] = {"--images", "d", "--prompts", "p", "--directions", "gen,und", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, gu, &err) == 0 && c.directions == (DIR_UND | DIR_GEN), "gen,und");
    const char *cmd[] = {"--prompts", "p", "--reward", "command", "--reward-cmd", "dsr world grade --batch",
                         "--no-self-score", "--eval-cmd", "eval.sh", "--eval-every", "5", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, cmd, &err) == 0 && c.reward == REWARD_COMMAND &&
                    strcmp(c.reward_cmd, "dsr world grade --batch") == 0 && !c.self_score &&
                    strcmp(c.eval_cmd, "eval.sh") == 0 && c.eval_every == 5,
             "command reward and eval: %s", err.msg);
    const char *sh[] = {"--prompts", "p", "--reward", "shuffled", "--eval-cmd", "e", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, sh, &err) == 0 && c.reward == REWARD_SHUFFLED && c.eval_every == 0, "shuffled");
    TH_CHECK(t, strcmp(reward_source_name(REWARD_SHUFFLED), "shuffled") == 0, "source name");

    const char *bad[][8] = {
        {"--prompts", "p", "--directions", "und", NULL},                        /* no images */
        {"--images", "d", "--directions", "gen", NULL},                         /* no prompts */
        {"--images", "d", "--prompts", "p", "--directions", "und,", NULL},      /* empty name */
        {"--images", "d", "--prompts", "p", "--directions", "both", NULL},
        {"--images", "d", "--directions", "und", "--batch-images", "0", NULL},
        {"--prompts", "p", "--reward", "grader", NULL},
        {"--prompts", "p", "--reward", "command", NULL},                        /* no --reward-cmd */
        {"--prompts", "p", "--reward-cmd", "x", NULL},                          /* without command */
        {"--prompts", "p", "--reward", "command", "--reward-cmd", "", NULL},
        {"--prompts", "p", "--no-self-score", NULL},
        {"--prompts", "p", "--eval-every", "3", NULL},                          /* no --eval-cmd */
        {"--prompts", "p", "--eval-cmd", "e", "--eval-every", "-1", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        TH_CHECK(t, cs_parse_train_config(&c, bad[i], &err) == -1 && err.msg[0], "bad case %zu rejected with a message", i);
    }
    const char *miss[] = {"--prompts", "p", "--directions", "und", NULL};
    cs_parse_train_config(&c, miss, &err);
    TH_CHECK(t, strstr(err.msg, "--images") != NULL, "names the missing data: %s", err.msg);
}

/* --seed fixes the plan: the dry run's items and request seeds. */
static void test_seed_plan(struct th *t) {
    char dir[256], images[300], prompts[300];
    if (!TH_CHECK(t, cs_tmpdir(dir, sizeof dir) == 0, "tmpdir")) return;
    cs_path(images, sizeof images, dir, "images");
    cs_path(prompts, sizeof prompts, dir, "prompts.txt");
    mkdir(images, 0755);
    for (int i = 0; i < 6; i++) {
        char name[32], path[400];
        snprintf(name, sizeof name, "im%d.png", i);
        snprintf(path, sizeof path, "%s/%s", images, name);
        cs_write_png(path, 8, 8, (uint32_t)i);
    }
    FILE *f = fopen(prompts, "w");
    if (f) {
        fputs("a\nb\nc\nd\ne\nf\ng\n", f);
        fclose(f);
    }
    char *out[3] = {NULL, NULL, NULL};
    const char *seeds[3] = {"5", "5", "6"};
    for (int k = 0; k < 3; k++) {
        const char *args[] = {"--images", images, "--prompts", prompts, "--batch-images", "3", "--batch-prompts", "3",
                              "--seed", seeds[k], "--reward", "shuffled", "--dry-run", NULL};
        TH_CHECK(t, cs_run("dsr-train", args, &out[k], NULL, 60) == 0, "dry run %d", k);
    }
    TH_CHECK(t, out[0] && out[1] && strcmp(out[0], out[1]) == 0 && strstr(out[0], "seed 5"),
             "the same --seed gives the same plan");
    TH_CHECK(t, out[0] && out[2] && strcmp(out[0], out[2]) != 0, "another --seed another plan");
    TH_CHECK(t, out[0] && strstr(out[0], "reward: shuffled") && strstr(out[0], "directions: und,gen"),
             "the plan names the reward source and directions:\n%s", out[0] ? out[0] : "");
    for (int k = 0; k < 3; k++) free(out[k]);
    cs_rmtree(dir);
}

int main(void) {
    cs_init();
    struct th t = {0};
    th_run(&t, "shuffle", test_shuffle);
    th_run(&t, "step_stats", test_step_stats);
    th_run(&t, "reward_protocol", test_reward_protocol);
    th_run(&t, "reward_command", test_reward_command);
    th_run(&t, "eval_hook", test_eval_hook);
    th_run(&t, "config", test_config);
    th_run(&t, "seed_plan", test_seed_plan);
    return th_finish(&t, "test_client_experiment");
}
