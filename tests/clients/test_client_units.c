/* Client pieces that need no server: base64 (proto/, as the client uses it), advantages (TRL semantics),
 * SimPO pair choice, retry schedule under a fake clock, the trainer's state
 * file, data order, flag parsing, the contact sheet, and error kinds of the
 * C client against a port nobody listens on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "advantage.h"
#include "base64.h"
#include "bitmap_font.h"
#include "client_support.h"
#include "cli.h"
#include "progress.h"
#include "train_config.h"
#include "contact_sheet.h"
#include "dataset.h"
#include "dsr_client.h"
#include "harness.h"
#include "retry.h"
#include "train_state.h"

static void test_base64(struct th *t) {
    const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *enc = base64_encode((const uint8_t *)cases[i][0], strlen(cases[i][0]));
        TH_CHECK(t, enc && strcmp(enc, cases[i][1]) == 0, "encode '%s' -> '%s'", cases[i][0], enc ? enc : "NULL");
        size_t n = 99, bad_at;
        uint8_t *dec = NULL;
        base64_decode(cases[i][1], strlen(cases[i][1]), &dec, &n, &bad_at);
        TH_CHECK(t, dec && n == strlen(cases[i][0]) && memcmp(dec, cases[i][0], n) == 0, "decode '%s'", cases[i][1]);
        free(enc);
        free(dec);
    }
    uint8_t all[256];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    char *enc = base64_encode(all, sizeof all);
    size_t n = 0, bad_at;
    uint8_t *dec = NULL;
    base64_decode(enc, strlen(enc), &dec, &n, &bad_at);
    TH_CHECK(t, dec && n == 256 && memcmp(dec, all, 256) == 0, "every byte round-trips");
    free(enc);
    free(dec);
    const char *bad[] = {"Zg=a", "Z", "Zm9v!", "Zh==", "Zm9vY===", "Zm8=Zm8="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dec = NULL;
        TH_CHECK(t, base64_decode(bad[i], strlen(bad[i]), &dec, &n, &bad_at) == -1, "'%s' rejected", bad[i]);
        free(dec);
    }
}

static void test_advantages(struct th *t) {
    /* two groups of 4; hand-computed with torch semantics (unbiased std) */
    const double r[8] = {1, 2, 3, 4, 10, 10, 10, 10};
    double a[8];
    grpo_advantages(r, 2, 4, SCALE_GROUP, a);
    double sd = sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3.0); /* 1.2910 */
    for (int i = 0; i < 4; i++)
        TH_CHECK(t, fabs(a[i] - (r[i] - 2.5) / (sd + 1e-4)) < 1e-12, "group adv %d = %g", i, a[i]);
    for (int i = 4; i < 8; i++) TH_CHECK(t, a[i] == 0.0, "no-spread group gives 0 (not NaN): %g", a[i]);
    grpo_advantages(r, 2, 4, SCALE_NONE, a);
    TH_CHECK(t, a[0] == -1.5 && a[3] == 1.5, "none: centred only");
    grpo_advantages(r, 2, 4, SCALE_BATCH, a);
    double mean, bstd;
    reward_stats(r, 8, &mean, &bstd);
    TH_CHECK(t, fabs(a[3] - 1.5 / (bstd + 1e-4)) < 1e-12, "batch std over all 8 rewards");
    TH_CHECK(t, fabs(mean - 6.25) < 1e-12, "mean");
    enum scale_rewards s;
    TH_CHECK(t, scale_rewards_parse("batch", &s) == 0 && s == SCALE_BATCH, "parse batch");
    TH_CHECK(t, scale_rewards_parse("bogus", &s) == -1, "parse bogus");

    int best, worst;
    const double g1[4] = {-3, -1, -5, -1};
    TH_CHECK(t, simpo_pair_pick(g1, 4, &best, &worst) == 1 && best == 1 && worst == 2, "best %d worst %d", best, worst);
    const double g2[3] = {2, 2, 2};
    TH_CHECK(t, simpo_pair_pick(g2, 3, &best, &worst) == 0, "no spread, no pair");
}

/* Fake clock: sleeping advances time; records the delays. */
struct fake_clock {
    double t;
    double delays[32];
    int n_delays;
};
static double fake_now(void *ctx) { return ((struct fake_clock *)ctx)->t; }
static void fake_sleep(void *ctx, double s) {
    struct fake_clock *c = ctx;
    c->t += s;
    if (c->n_delays < 32) c->delays[c->n_delays++] = s;
}

/* Fails with the given kinds in turn, then succeeds. */
struct scripted {
    const struct dsr_call_err *script;
    int n, calls;
};
static int scripted_fn(void *ctx, int attempt, struct dsr_call_err *e) {
    struct scripted *s = ctx;
    (void)attempt;
    if (s->calls < s->n) {
        *e = s->script[s->calls++];
        return -1;
    }
    s->calls++;
    memset(e, 0, sizeof *e);
    return 0;
}

static void test_retry(struct th *t) {
    struct retry_policy p = {6, 0.5, 3.0, 100.0};
    TH_CHECK(t, retry_delay(&p, 1) == 0.5 && retry_delay(&p, 2) == 1.0 && retry_delay(&p, 3) == 2.0 &&
                    retry_delay(&p, 4) == 3.0 && retry_delay(&p, 9) == 3.0,
             "doubling capped at max delay");
    struct dsr_call_err refused = {DSR_CALL_TRANSPORT, 0, "", "", "refused"};
    struct dsr_call_err timeout = {DSR_CALL_TIMEOUT, 0, "", "", "slow"};
    struct dsr_call_err s503 = {DSR_CALL_HTTP, 503, "unavailable", "", "loading"};
    struct dsr_call_err s400 = {DSR_CALL_HTTP, 400, "invalid_request", "n", "bad n"};
    struct dsr_call_err s404 = {DSR_CALL_HTTP, 404, "not_found", "", "x"};
    TH_CHECK(t, dsr_call_err_retryable(&refused) && dsr_call_err_retryable(&timeout) && dsr_call_err_retryable(&s503),
             "transport, timeout, 5xx retryable");
    TH_CHECK(t, !dsr_call_err_retryable(&s400) && !dsr_call_err_retryable(&s404), "4xx not retryable");

    struct fake_clock fc = {0};
    struct retry_clock clock = {fake_now, fake_sleep, &fc};
    struct dsr_call_err e;
    int attempts;
    struct dsr_call_err script1[] = {refused, timeout, s503};
    struct scripted s = {script1, 3, 0};
    int rc = retry_run(&p, &clock, scripted_fn, &s, NULL, NULL, &attempts, &e);
    TH_CHECK(t, rc == 0 && attempts == 4 && fc.n_delays == 3, "succeeds on the 4th try (rc %d, %d tries)", rc, attempts);
    TH_CHECK(t, fc.delays[0] == 0.5 && fc.delays[1] == 1.0 && fc.delays[2] == 2.0, "delays 0.5, 1, 2");

    struct dsr_call_err script2[] = {refused, s400, refused};
    fc = (struct fake_clock){0};
    s = (struct scripted){script2, 3, 0};
    rc = retry_run(&p, &clock, scripted_fn, &s, NULL, NULL, &attempts, &e);
    TH_CHECK(t, rc == -1 && attempts == 2 && e.status == 400 && strcmp(e.msg, "bad n") == 0,
             "4xx stops at once with the server's message");

    struct dsr_call_err forever[10] = {refused, refused, refused, refused, refused,
                                       refused, refused, refused, refused, refused};
    fc = (struct fake_clock){0};
    s = (struct scripted){forever, 10, 0};
    rc = retry_run(&p, &clock, scripted_fn, &s, NULL, NULL, &attempts, &e);
    TH_CHECK(t, rc == -1 && attempts == 6 && e.kind == DSR_CALL_TRANSPORT, "bounded by max attempts (%d)", attempts);

    struct retry_policy short_time = {100, 1.0, 8.0, 10.0};
    fc = (struct fake_clock){0};
    s = (struct scripted){forever, 10, 0};
    rc = retry_run(&short_time, &clock, scripted_fn, &s, NULL, NULL, &attempts, &e);
    /* delays 1, 2, 4 (t = 7); the next (8) would end at 15 > 10 */
    TH_CHECK(t, rc == -1 && attempts == 4 && fc.t == 7.0, "bounded by total time (%d tries, t=%g)", attempts, fc.t);
}

static void test_state(struct th *t) {
    char dir[256];
    if (!TH_CHECK(t, cs_tmpdir(dir, sizeof dir) == 0, "tmpdir")) return;
    char path[300];
    snprintf(path, sizeof path, "%s/state.json", dir);
    struct train_state s, l;
    train_state_init(&s, 42, 7);
    s.step = 5;
    s.image_cursor = 11;
    s.prompt_cursor = 0xfedcba9876543210ull;
    for (int i = 0; i < 3; i++) rng_next_u64(&s.rng);
    snprintf(s.pending_key, sizeof s.pending_key, "abc-123");
    snprintf(s.last_checkpoint, sizeof s.last_checkpoint, "step-000004");
    s.last_checkpoint_version = 11;
    struct dsr_err err;
    TH_CHECK(t, train_state_save(&s, path, &err) == 0, "save: %s", err.msg);
    TH_CHECK(t, access(path, F_OK) == 0, "state written");
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    TH_CHECK(t, access(tmp, F_OK) != 0, "no temp file left behind");
    TH_CHECK(t, train_state_load(&l, path, &err) == 0, "load: %s", err.msg);
    TH_CHECK(t, l.step == 5 && l.policy_version == 7 && l.seed == 42 && l.image_cursor == 11 &&
                    l.prompt_cursor == 0xfedcba9876543210ull && memcmp(&l.rng, &s.rng, sizeof l.rng) == 0 &&
                    strcmp(l.pending_key, "abc-123") == 0 && strcmp(l.last_checkpoint, "step-000004") == 0 &&
                    l.last_checkpoint_version == 11,
             "round trip");
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"format\": 1, \"step\": -2}", f);
        fclose(f);
    }
    TH_CHECK(t, train_state_load(&l, path, &err) == -1 && strstr(err.msg, "malformed"), "bad state: %s", err.msg);
    char k1[TRAIN_KEY_MAX], k2[TRAIN_KEY_MAX];
    TH_CHECK(t, train_new_key(k1, &err) == 0 && train_new_key(k2, &err) == 0 && strlen(k1) == 36 &&
                    strcmp(k1, k2) != 0 && k1[14] == '4',
             "fresh UUID v4 keys");
    cs_rmtree(dir);
}

static void test_dataset(struct th *t) {
    char dir[256];
    if (!TH_CHECK(t, cs_tmpdir(dir, sizeof dir) == 0, "tmpdir")) return;
    char path[300];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/im%d.PNG", dir, i);
        cs_write_png(path, 8, 8, (uint32_t)i);
    }
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("a red circle\r\n\n  \nblue sky\nthird\n", f);
        fclose(f);
    }
    struct dataset a, b, p;
    struct dsr_err err;
    TH_CHECK(t, dataset_load_images(&a, dir, 3, &err) == 0 && a.n == 5, "5 pngs: %s", err.msg);
    TH_CHECK(t, dataset_load_images(&b, dir, 3, &err) == 0, "again");
    int same = 1, seen[5] = {0};
    for (uint64_t k = 0; k < 15; k++) {
        const char *x = dataset_at(&a, k);
        same &= strcmp(x, dataset_at(&b, k)) == 0;
        if (k < 5) seen[x[strlen(x) - 5] - '0']++;
    }
    TH_CHECK(t, same, "same seed, same order");
    TH_CHECK(t, seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1 && seen[4] == 1,
             "an epoch visits every image once");
    TH_CHECK(t, strcmp(dataset_at(&b, 7), dataset_at(&a, 7)) == 0, "random access by cursor");
    dataset_free(&b);
    TH_CHECK(t, dataset_load_prompts(&p, path, 1, &err) == 0 && p.n == 3, "3 prompts: %s", err.msg);
    int found = 0;
    for (uint64_t k = 0; k < 3; k++) found += strcmp(dataset_at(&p, k), "a red circle") == 0;
    TH_CHECK(t, found == 1, "\\r stripped, blank lines skipped");
    dataset_free(&a);
    dataset_free(&p);
    TH_CHECK(t, dataset_load_prompts(&p, "/nonexistent/prompts", 1, &err) == -1 && strstr(err.msg, "cannot open"),
             "missing file");
    cs_rmtree(dir);
}

static void test_config(struct th *t) {
    struct train_config c;
    struct dsr_err err;
    const char *ok[] = {"--prompts", "p.txt", "--server", "http://a:1", "--server", "http://b:2", "--algorithm",
                        "simpo", "--group-size", "4", "--lr", "1e-5", "--scale-rewards", "none", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, ok, &err) == 0, "parse: %s", err.msg);
    TH_CHECK(t, c.n_servers == 2 && strcmp(c.learner, "http://a:1") == 0 && c.algorithm == ALGO_SIMPO &&
                    c.group_size == 4 && c.lr == 1e-5 && c.scale == SCALE_NONE && c.batch_images == 0,
             "values");
    /* TRL 1.10.0.dev0 (commit f2cd577) GRPOConfig: loss_type "dapo", epsilon 0.2,
     * epsilon_high None = epsilon, beta 0, learning_rate 1e-6 */
    TH_CHECK(t, c.epsilon == 0.2 && c.epsilon_high == 0.2 && c.beta == 0 && c.simpo_beta == 2 && c.simpo_gamma == 1 &&
                    c.max_grad_norm == 1 && strcmp(c.loss_type, "dapo") == 0,
             "TRL / SimPO defaults: epsilon %g..%g loss %s", c.epsilon, c.epsilon_high, c.loss_type);
    const char *eps[] = {"--prompts", "p.txt", "--epsilon", "0.3", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, eps, &err) == 0 && c.epsilon_high == 0.3, "epsilon_high follows --epsilon: %g",
             c.epsilon_high);
    const char *eps2[] = {"--prompts", "p.txt", "--epsilon-high", "0.28", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, eps2, &err) == 0 && c.epsilon_high == 0.28 && c.epsilon == 0.2, "--epsilon-high 0.28");
    struct progress_info pi = {.step = 3, .steps = 10, .policy_version = 3, .done_this_run = 3, .run_seconds = 6.3,
                               .step_seconds = 2.1, .has_und = true, .und = -4.12345, .has_loss = true,
                               .loss = -1.2345e-7};
    char line[256];
    progress_format(&pi, 10, line, sizeof line);
    TH_CHECK(t, strcmp(line, "step 3/10 [###.......]  30%  v3  R_U -4.1235  loss -1.235e-07  2.10s/step  ETA 15s") == 0,
             "progress line '%s'", line);
    char d[32];
    /* a caption for the terminal: escapes, invalid UTF-8 and C1 controls escaped, UTF-8 kept */
    char *buf = NULL;
    size_t bn = 0;
    FILE *mf = open_memstream(&buf, &bn);
    cli_print_text(mf, "ok \xc3\xa9 \x1b[31mred\x07 \xff\xc3 \xc2\x9b \xed\xa0\x80 \xe2\x82\xac");
    fclose(mf);
    TH_CHECK(t, strcmp(buf, "ok \xc3\xa9 \\x1b[31mred\\x07 \\xff\\xc3 \\xc2\\x9b \\xed\\xa0\\x80 \xe2\x82\xac") == 0,
             "escaped caption '%s'", buf);
    free(buf);
    progress_duration(3725, d, sizeof d);
    TH_CHECK(t, strcmp(d, "1h02m") == 0, "duration %s", d);
    const char *help[] = {"--help", NULL};
    TH_CHECK(t, cs_parse_train_config(&c, help, &err) == 1, "--help");
    const char *bad[][4] = {{"--prompts", "p", "--lr", "abc"},       {"--prompts", "p", "--group-size", "1"},
                            {"--prompts", "p", "--loss-type", "x"},  {"--prompts", "p", "--bogus", NULL},
                            {"--steps", "3", NULL, NULL},            {"--prompts", "p", "--epsilon-high", "0.1"},
                            {"--prompts", "p", "stray", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[6] = {bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL, NULL};
        err.msg[0] = '\0';
        TH_CHECK(t, cs_parse_train_config(&c, args, &err) == -1 && err.msg[0], "bad case %zu rejected with a message", i);
    }
}

static void test_contact_sheet(struct th *t) {
    uint8_t red[8 * 8 * 3], blue[8 * 4 * 3];
    for (size_t i = 0; i < sizeof red; i += 3) red[i] = 255, red[i + 1] = 0, red[i + 2] = 0;
    for (size_t i = 0; i < sizeof blue; i += 3) blue[i] = 0, blue[i + 1] = 0, blue[i + 2] = 255;
    struct sheet_image ims[3] = {{red, 8, 8, "#0 R=-1.5"}, {blue, 8, 4, "#1"}, {red, 8, 8, NULL}};
    uint8_t *img;
    int w, h;
    struct dsr_err err;
    if (!TH_CHECK(t, contact_sheet_build(ims, 3, &img, &w, &h, &err) == 0, "build: %s", err.msg)) return;
    /* 2 columns x 2 rows of 128 px cells (8 px scaled by 16) */
    TH_CHECK(t, w == 4 + 2 * (128 + 4) && h > 2 * 128, "size %dx%d", w, h);
    const uint8_t *px = img + ((size_t)10 * w + 10) * 3;
    TH_CHECK(t, px[0] == 255 && px[2] == 0, "first cell is red");
    px = img + ((size_t)10 * w + 4 + 132 + 10) * 3;
    TH_CHECK(t, px[2] == 255 && px[0] == 0, "second cell is blue");
    long white = 0;
    for (int y = 4 + 128; y < 4 + 128 + 22; y++)
        for (int x = 4; x < 4 + 128; x++) white += img[((size_t)y * w + x) * 3] == 255 && img[((size_t)y * w + x) * 3 + 1] == 255;
    TH_CHECK(t, white > 50, "caption strip has label pixels (%ld)", white);
    free(img);
    TH_CHECK(t, contact_sheet_build(ims, 0, &img, &w, &h, &err) == -1, "no images rejected");
    TH_CHECK(t, font_text_width("12", 2) == 22, "font width");
}

static void test_client_errors(struct th *t) {
    struct dsr_call_err e;
    struct dsr_client_opts bad = {"ftp://x", NULL, NULL, 0, 0};
    TH_CHECK(t, dsr_client_new(&bad, &e) == NULL && e.kind == DSR_CALL_USAGE, "bad URL scheme");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", cs_free_port());
    struct dsr_client_opts o = {url, "k", NULL, 2000, 1000};
    struct dsr_client *c = dsr_client_new(&o, &e);
    if (!TH_CHECK(t, c != NULL, "client")) return;
    json_t *out = (json_t *)1;
    TH_CHECK(t, dsr_health(c, &out, &e) == -1 && out == NULL && e.kind == DSR_CALL_TRANSPORT &&
                    dsr_call_err_retryable(&e),
             "connection refused is a retryable transport error: %s", e.msg);
    char buf[800];
    dsr_call_err_format(&e, buf, sizeof buf);
    TH_CHECK(t, strstr(buf, "transport error") != NULL, "formatted: %s", buf);
    json_t *img = dsr_image_png_file("/nonexistent.png", 0, &e);
    TH_CHECK(t, img == NULL && e.kind == DSR_CALL_USAGE, "missing image");
    dsr_client_free(c);
}

int main(void) {
    cs_init();
    dsr_client_global_init();
    struct th t = {0};
    th_run(&t, "base64", test_base64);
    th_run(&t, "advantages", test_advantages);
    th_run(&t, "retry", test_retry);
    th_run(&t, "state", test_state);
    th_run(&t, "dataset", test_dataset);
    th_run(&t, "config", test_config);
    th_run(&t, "contact_sheet", test_contact_sheet);
    th_run(&t, "client_errors", test_client_errors);
    dsr_client_global_cleanup();
    return th_finish(&t, "test_client_units");
}
