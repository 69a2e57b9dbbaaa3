/* Runtime niceties of a real dsrd: a clean start-up log, --version and
 * --help, the served OpenAPI document, build and start-time metrics, and
 * CORS with --allowed-origins. */
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "api_support.h"
#include "harness.h"
#include "base/version.h"

#define TINY "tests/fixtures/janus-tiny"

struct api_test {
    struct th t;
    const char *argv0;
    struct dsrd_proc plain; /* no CORS */
    struct dsrd_proc cors;  /* --allowed-origins https://ui.example,http://localhost:3000 */
};

/* Runs BUILD/<prog> args and returns its stdout (malloc'ed) and exit code. */
static char *run_prog(const char *argv0, const char *prog, const char *args, int *rc) {
    (void)argv0;
    char bin[PATH_MAX], cmd[PATH_MAX + 256];
    if (th_build_program(prog, bin, sizeof bin)) return NULL;
    snprintf(cmd, sizeof cmd, "env -u DSR_PORT '%s' %s 2>&1", bin, args);
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(cap, 1);
    while (out && n + 1 < cap) {
        size_t k = fread(out + n, 1, cap - 1 - n, f);
        if (!k) break;
        n += k;
    }
    int st = pclose(f);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* libmicrohttpd warns when its logger is not the first option it is given. */
static void test_clean_startup_log(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    char *log = th_read_file(a->plain.log_path, NULL);
    TH_CHECK(t, log && strstr(log, "model ready"), "log %s has no 'model ready'", a->plain.log_path);
    TH_CHECK(t, log && !strstr(log, "MHD_OPTION"), "start-up log has a libmicrohttpd option warning:\n%s",
             log ? log : "");
    free(log);
}

static void test_version_flags(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    static const char *const progs[] = {"dsrd", "dsr", "dsr-train"};
    for (int i = 0; i < 3; i++) {
        int rc = -1;
        char *out = run_prog(a->argv0, progs[i], "--version", &rc);
        char want[128];
        snprintf(want, sizeof want, "%s %s", progs[i], dsr_version());
        TH_CHECK(t, out && rc == 0 && strncmp(out, want, strlen(want)) == 0, "%s --version: rc %d, '%s' (want '%s')",
                 progs[i], rc, out ? out : "", want);
        free(out);
    }
}

/* Each option shows the kind of value it takes. */
static void test_help_value_kinds(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    int rc = -1;
    char *out = run_prog(a->argv0, "dsrd", "--help", &rc);
    TH_CHECK(t, out && rc == 0, "dsrd --help rc %d", rc);
    static const char *const want[] = {"--model DIR", "--host ADDR", "--api-key KEY", "--port N",
                                       "--max-body SIZE", "--log-format text|json", "--quantizer l2|euclidean",
                                       "--allowed-origins LIST", "--dual-question TEXT", "--version"};
    for (size_t i = 0; out && i < sizeof want / sizeof want[0]; i++)
        TH_CHECK(t, strstr(out, want[i]) != NULL, "dsrd --help lacks '%s'", want[i]);
    TH_CHECK(t, out && !strstr(out, "--model N") && !strstr(out, "--host N"), "string options shown as N");
    free(out);
}

/* Bad --lora-* and --kv-dtype values stop dsrd before it loads anything, naming the flag. */
static void test_lora_flag_errors(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--lora-rank -1", "--lora-rank must be in [0, 1024]"},
        {"--lora-rank 2000", "--lora-rank must be in [0, 1024]"},
        {"--lora-alpha 0", "--lora-alpha: '0' must be a number in (0, 1e6]"},
        {"--lora-targets q_proj,qkv", "--lora-targets: unknown target \"qkv\" (valid: q_proj, k_proj"},
        {"--lora-targets ''", "--lora-targets: no targets given"},
        {"--kv-dtype fp8", "--kv-dtype must be f32 or bf16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = 0;
        char *out = run_prog(a->argv0, "dsrd", cases[i].args, &rc);
        TH_CHECK(t, out && rc == 2 && strstr(out, cases[i].needle), "dsrd %s: rc %d, '%s' (want '%s')", cases[i].args,
                 rc, out ? out : "", cases[i].needle);
        free(out);
    }
}

static void test_openapi_served(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_call(&a->plain, "GET", "/openapi.yaml", NULL, 0, NULL, NULL, &r);
    char *want = th_read_file("proto/openapi.yaml", NULL);
    TH_CHECK(t, r.status == 200 && want && r.body && strcmp(r.body, want) == 0,
             "GET /openapi.yaml: %ld, body %s the file", r.status, r.body && want && !strcmp(r.body, want) ? "is" : "is not");
    TH_CHECK(t, strstr(r.headers, "Content-Type: application/yaml") != NULL, "content type: %s", r.headers);
    free(want);
    http_resp_free(&r);
}

static void test_build_and_start_metrics(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    http_call(&a->plain, "GET", "/metrics", NULL, 0, NULL, NULL, &r);
    char series[160];
    snprintf(series, sizeof series, "dsr_build_info{version=\"%s\",commit=\"%s\"}", dsr_version(), dsr_commit());
    TH_CHECK(t, r.status == 200 && api_metric(r.body, series) == 1, "no '%s 1' in /metrics", series);
    double start = api_metric(r.body ? r.body : "", "process_start_time_seconds");
    double now = (double)time(NULL);
    TH_CHECK(t, start > now - 600 && start <= now + 1, "process_start_time_seconds %f, now %f", start, now);
    http_resp_free(&r);
}

static void test_cors(struct th *t) {
    struct api_test *a = (struct api_test *)t;
    struct http_resp r;
    /* an allowed origin: echoed, with the request id exposed to scripts */
    http_call(&a->cors, "GET", "/health", NULL, 0, NULL, "Origin: http://localhost:3000", &r);
    TH_CHECK(t, r.status == 200 && strstr(r.headers, "Access-Control-Allow-Origin: http://localhost:3000\r\n") &&
                    strstr(r.headers, "Vary: Origin") && strstr(r.headers, "Access-Control-Expose-Headers: X-Request-Id"),
             "allowed origin: %ld %s", r.status, r.headers);
    http_resp_free(&r);
    /* another origin gets no CORS headers (the browser then refuses) */
    http_call(&a->cors, "GET", "/health", NULL, 0, NULL, "Origin: https://evil.example", &r);
    TH_CHECK(t, r.status == 200 && !strstr(r.headers, "Access-Control-Allow-Origin"), "foreign origin: %s", r.headers);
    http_resp_free(&r);
    /* a preflight: 204 with the methods and headers a client needs, before auth */
    http_call(&a->cors, "OPTIONS", "/score", NULL, 0, NULL, "Origin: https://ui.example", &r);
    TH_CHECK(t, r.status == 204 && strstr(r.headers, "Access-Control-Allow-Origin: https://ui.example\r\n") &&
                    strstr(r.headers, "Access-Control-Allow-Methods: POST") &&
                    strstr(r.headers, "Access-Control-Allow-Headers: Authorization, Content-Type, X-Request-Id"),
             "preflight: %ld %s", r.status, r.headers);
    http_resp_free(&r);
    /* preflight of an unknown path is still 404 */
    http_call(&a->cors, "OPTIONS", "/nope", NULL, 0, NULL, "Origin: https://ui.example", &r);
    TH_CHECK(t, r.status == 404, "preflight of an unknown path: %ld", r.status);
    http_resp_free(&r);
    /* without --allowed-origins nothing changes */
    http_call(&a->plain, "GET", "/health", NULL, 0, NULL, "Origin: http://localhost:3000", &r);
    TH_CHECK(t, r.status == 200 && !strstr(r.headers, "Access-Control-"), "no CORS by default: %s", r.headers);
    http_resp_free(&r);
    http_call(&a->plain, "OPTIONS", "/score", NULL, 0, NULL, "Origin: http://localhost:3000", &r);
    TH_CHECK(t, r.status == 405, "OPTIONS without CORS: %ld", r.status);
    http_resp_free(&r);
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct api_test a = {0};
    a.argv0 = argv[0];
    const char *plain[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", NULL};
    const char *cors[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--api-key", "k",
                          "--allowed-origins", "https://ui.example,http://localhost:3000", NULL};
    dsrd_start(&a.plain, argv[0], plain);
    dsrd_start(&a.cors, argv[0], cors);
    if (TH_CHECK(&a.t, a.plain.pid > 0 && a.cors.pid > 0, "dsrd did not come up (logs %s %s)", a.plain.log_path,
                 a.cors.log_path)) {
        th_run(&a.t, "clean_startup_log", test_clean_startup_log);
        th_run(&a.t, "version_flags", test_version_flags);
        th_run(&a.t, "help_value_kinds", test_help_value_kinds);
        th_run(&a.t, "lora_flag_errors", test_lora_flag_errors);
        th_run(&a.t, "openapi_served", test_openapi_served);
        th_run(&a.t, "build_and_start_metrics", test_build_and_start_metrics);
        th_run(&a.t, "cors", test_cors);
    } else {
        a.t.failed++;
    }
    if (a.plain.pid > 0) dsrd_stop(&a.plain);
    if (a.cors.pid > 0) dsrd_stop(&a.cors);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_runtime");
}
