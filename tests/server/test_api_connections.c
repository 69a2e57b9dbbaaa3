/* Connection handling of a real dsrd: slow or idle clients cannot lock
 * others out.
 *   - 500 connections that sent one header byte each: /health still answers
 *     within 1 s, and so does a POST;
 *   - a pooled keep-alive client: 100 concurrent requests, twice, complete
 *     about as fast as 100 on fresh connections, and the idle pool does not
 *     keep other clients out;
 *   - --header-timeout: a client trickling its headers is cut off;
 *   - --max-connections-per-ip: one address cannot take more slots, and its
 *     slots come back when it closes them. */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define TINY "tests/fixtures/janus-tiny"

struct conn_test {
    struct th t;
    const char *argv0;
    struct dsrd_proc p; /* default connection settings */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A TCP connection to dsrd, or -1. */
static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Whether the server closed fd (EOF or reset) within `seconds`. */
static bool closed_within(int fd, double seconds) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)(seconds * 1000)) != 1) return false;
    char c;
    ssize_t k = recv(fd, &c, 1, 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static void test_slow_clients(struct th *t) {
    struct conn_test *a = (struct conn_test *)t;
    enum { N = 500 };
    int fds[N], open_n = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_connect(a->p.port);
        if (fds[i] >= 0 && send(fds[i], "P", 1, MSG_NOSIGNAL) == 1) open_n++;
    }
    TH_CHECK(t, open_n == N, "%d of %d slow connections opened", open_n, N);
    usleep(200000); /* let the server accept them all */
    double worst = 0;
    int answered = 0;
    for (int k = 0; k < 5; k++) {
        struct http_resp r;
        double t0 = now_s();
        http_call_within(&a->p, "GET", "/health", NULL, 0, NULL, 1.0, &r);
        double dt = now_s() - t0;
        answered += r.status == 200;
        if (dt > worst) worst = dt;
        http_resp_free(&r);
    }
    struct http_resp r;
    const char *body = "{\"text\": \"a red circle\"}";
    http_call_within(&a->p, "POST", "/tokenize", body, strlen(body), NULL, 1.0, &r);
    TH_CHECK(t, answered == 5 && r.status == 200, "with %d slow connections open: /health answered %d of 5 within 1 s "
             "(worst %.3f s), /tokenize %ld", open_n, answered, worst, r.status);
    http_resp_free(&r);
    printf("  /health with %d slow connections open: worst of 5 %.1f ms\n", open_n, worst * 1e3);
    int still_open = 0;
    for (int i = 0; i < N; i++) {
        if (fds[i] < 0) continue;
        still_open += !closed_within(fds[i], 0);
        close(fds[i]);
    }
    TH_CHECK(t, still_open == open_n, "slow connections were cut before --header-timeout (%d of %d open)", still_open,
             open_n);
}

/* n concurrent POST /tokenize on multi handle m; the seconds they took
 * (-1 when any failed).  fresh: a new connection each, closed after. */
static double burst(CURLM *m, const struct dsrd_proc *p, int n, bool fresh, int *failed) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/tokenize", p->port);
    static const char body[] = "{\"text\": \"a red circle\"}";
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL **e = calloc((size_t)n, sizeof *e);
    FILE *sink = fopen("/dev/null", "w");
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, sink);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
        if (fresh) {
            curl_easy_setopt(e[i], CURLOPT_FRESH_CONNECT, 1L);
            curl_easy_setopt(e[i], CURLOPT_FORBID_REUSE, 1L);
        }
        curl_multi_add_handle(m, e[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double dt = now_s() - t0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        *failed += msg->data.result != CURLE_OK || status != 200;
    }
    for (int i = 0; i < n; i++) {
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    free(e);
    fclose(sink);
    curl_slist_free_all(h);
    return dt;
}

static void test_keepalive_burst(struct th *t) {
    struct conn_test *a = (struct conn_test *)t;
    enum { N = 100 };
    CURLM *fresh = curl_multi_init(), *pooled = curl_multi_init();
    curl_multi_setopt(pooled, CURLMOPT_MAXCONNECTS, 2L * N);
    int failed = 0;
    double t_fresh = burst(fresh, &a->p, N, true, &failed);
    int fresh_failed = failed;
    double t_pool1 = burst(pooled, &a->p, N, false, &failed);
    double t_pool2 = burst(pooled, &a->p, N, false, &failed); /* reuses the idle pool */
    /* the pool's idle connections (still open) must not keep others out */
    double t_other = burst(fresh, &a->p, N, true, &failed);
    printf("  100 concurrent requests: fresh connections %.0f ms; keep-alive pool %.0f ms, again %.0f ms; "
           "fresh beside the idle pool %.0f ms\n", t_fresh * 1e3, t_pool1 * 1e3, t_pool2 * 1e3, t_other * 1e3);
    TH_CHECK(t, failed == 0, "%d requests failed (%d on fresh connections)", failed, fresh_failed);
    double bound = 2 * t_fresh + 1.0;
    TH_CHECK(t, t_pool1 <= bound && t_pool2 <= bound && t_other <= bound,
             "keep-alive bursts %.2f s and %.2f s, fresh beside them %.2f s, against %.2f s fresh", t_pool1, t_pool2,
             t_other, t_fresh);
    curl_multi_cleanup(pooled);
    curl_multi_cleanup(fresh);
}

static void test_header_timeout(struct th *t) {
    struct conn_test *a = (struct conn_test *)t;
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--header-timeout", "2", NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, args) == 0, "dsrd --header-timeout 2 starts (log %s)", p.log_path))
        return;
    int fd = tcp_connect(p.port);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    double t0 = now_s(), cut_at = -1;
    /* a byte every 0.25 s: never idle, never done */
    for (size_t i = 0; fd >= 0 && now_s() - t0 < 8; i++) {
        if (send(fd, i < sizeof req - 1 ? req + i : "a", 1, MSG_NOSIGNAL) != 1 || closed_within(fd, 0.25)) {
            cut_at = now_s() - t0;
            break;
        }
    }
    TH_CHECK(t, cut_at >= 1.5 && cut_at <= 5, "a trickled header was cut after %.2f s (want about 2 s)", cut_at);
    if (fd >= 0) close(fd);
    /* an idle keep-alive connection waits for its next request's headers as long */
    fd = tcp_connect(p.port);
    static const char full[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[4096];
    ssize_t got = fd >= 0 && send(fd, full, sizeof full - 1, MSG_NOSIGNAL) > 0 ? recv(fd, buf, sizeof buf, 0) : -1;
    TH_CHECK(t, got > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0, "keep-alive request answered");
    t0 = now_s();
    bool cut = fd >= 0 && closed_within(fd, 6);
    TH_CHECK(t, cut && now_s() - t0 >= 1.5, "an idle keep-alive connection closed after %.2f s (want about 2 s)",
             now_s() - t0);
    if (fd >= 0) close(fd);
    struct http_resp r;
    http_call(&p, "GET", "/metrics", NULL, 0, NULL, NULL, &r);
    TH_CHECK(t, r.body && api_metric(r.body, "dsr_header_timeouts_total") >= 2, "dsr_header_timeouts_total >= 2");
    http_resp_free(&r);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

static void test_per_ip_limit(struct th *t) {
    struct conn_test *a = (struct conn_test *)t;
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", "--max-connections-per-ip", "8", NULL};
    struct dsrd_proc p;
    if (!TH_CHECK(t, dsrd_start(&p, a->argv0, args) == 0, "dsrd --max-connections-per-ip 8 starts (log %s)",
                  p.log_path))
        return;
    usleep(200000); /* the start-up probes' connections close */
    int fds[8];
    for (int i = 0; i < 8; i++) fds[i] = tcp_connect(p.port);
    usleep(200000);
    int extra = tcp_connect(p.port);
    TH_CHECK(t, extra >= 0 && closed_within(extra, 2), "a 9th connection from one address was not refused");
    if (extra >= 0) close(extra);
    for (int i = 0; i < 8; i++)
        if (fds[i] >= 0) close(fds[i]);
    usleep(300000);
    struct http_resp r;
    http_call_within(&p, "GET", "/health", NULL, 0, NULL, 2, &r);
    TH_CHECK(t, r.status == 200, "after closing them: /health %ld", r.status);
    http_resp_free(&r);
    TH_CHECK(t, dsrd_stop(&p) == 0, "clean exit");
}

int main(int argc, char **argv) {
    (void)argc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct conn_test a = {.argv0 = argv[0]};
    const char *args[] = {"--model", TINY, "--boi-id", "259", "--eoi-id", "260", NULL};
    if (TH_CHECK(&a.t, dsrd_start(&a.p, argv[0], args) == 0, "dsrd starts (log %s)", a.p.log_path)) {
        th_run(&a.t, "slow_clients", test_slow_clients);
        th_run(&a.t, "keepalive_burst", test_keepalive_burst);
        TH_CHECK(&a.t, dsrd_stop_within(&a.p, 30) == 0, "dsrd exits cleanly (log %s)", a.p.log_path);
    } else {
        a.t.failed++;
    }
    th_run(&a.t, "header_timeout", test_header_timeout);
    th_run(&a.t, "per_ip_limit", test_per_ip_limit);
    curl_global_cleanup();
    return th_finish(&a.t, "test_api_connections");
}
