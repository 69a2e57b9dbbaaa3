#include "api_support.h"

#include "harness.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static bool health_ok(const struct dsrd_proc *p) {
    struct http_resp r;
    bool ok = http_call(p, "GET", "/health", NULL, 0, NULL, NULL, &r) == 0 && r.status == 200;
    http_resp_free(&r);
    return ok;
}

static bool loaded(const struct dsrd_proc *p) {
    struct http_resp r;
    bool ok = http_call(p, "GET", "/metrics", NULL, 0, NULL, NULL, &r) == 0 && r.status == 200 && r.body &&
              api_metric(r.body, "dsr_ready") == 1;
    http_resp_free(&r);
    return ok;
}

static int launch(struct dsrd_proc *p, const char *argv0, const char *const *args,
                  bool (*ready)(const struct dsrd_proc *p)) {
    memset(p, 0, sizeof *p);
    (void)argv0;
    char bin[4096];
    if (th_build_program("dsrd", bin, sizeof bin)) return -1;
    p->port = free_port();
    if (p->port <= 0) return -1;
    snprintf(p->log_path, sizeof p->log_path, "/tmp/dsrd-test-%d-%d.log", (int)getpid(), p->port);
    const char *argv[64];
    int n = 0;
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = port;
    int has_model = 0;
    for (int i = 0; args && args[i] && n < 60; i++) {
        has_model |= strcmp(args[i], "--model") == 0;
        argv[n++] = args[i];
    }
    /* tests written against the random-weight model name no model */
    if (!has_model) {
        argv[n++] = "--model";
        argv[n++] = "builtin:random";
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *f = freopen(p->log_path, "w", stderr);
        (void)f;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    for (int i = 0; i < 1200; i++) { /* up to 120 s: the ASan build loads slowly */
        if (ready(p)) return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            p->pid = 0;
            return -1;
        }
        usleep(100000);
    }
    return -1;
}

int dsrd_start(struct dsrd_proc *p, const char *argv0, const char *const *args) {
    return launch(p, argv0, args, health_ok);
}

int dsrd_start_loaded(struct dsrd_proc *p, const char *argv0, const char *const *args) {
    return launch(p, argv0, args, loaded);
}

int dsrd_stop_within(struct dsrd_proc *p, double seconds) {
    if (p->pid <= 0) return -1;
    kill(p->pid, SIGTERM);
    int st = 0;
    pid_t got = 0;
    for (double waited = 0; waited < seconds && (got = waitpid(p->pid, &st, WNOHANG)) == 0; waited += 0.01)
        usleep(10000);
    if (got == 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &st, 0);
        p->pid = 0;
        return -2;
    }
    p->pid = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) unlink(p->log_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int dsrd_stop(struct dsrd_proc *p) {
    if (p->pid <= 0) return -1;
    kill(p->pid, SIGTERM);
    int st = 0;
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) unlink(p->log_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct sink {
    char *p;
    size_t n;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
    struct sink *s = arg;
    size_t k = size * nmemb;
    char *q = realloc(s->p, s->n + k + 1);
    if (!q) return 0;
    memcpy(q + s->n, data, k);
    s->p = q;
    s->n += k;
    s->p[s->n] = 0;
    return k;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
    struct http_resp *r = arg;
    size_t k = size * nmemb;
    size_t have = r->headers ? strlen(r->headers) : 0;
    char *h = realloc(r->headers, have + k + 1);
    if (!h) return 0;
    memcpy(h + have, data, k);
    h[have + k] = 0;
    r->headers = h;
    if (k > 14 && strncasecmp(data, "X-Request-Id: ", 14) == 0) {
        size_t n = k - 14;
        while (n && (data[14 + n - 1] == '\r' || data[14 + n - 1] == '\n')) n--;
        if (n >= sizeof r->request_id) n = sizeof r->request_id - 1;
        memcpy(r->request_id, data + 14, n);
        r->request_id[n] = 0;
    }
    return k;
}

int http_header(const struct http_resp *r, const char *name, char *out, size_t size) {
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ') v++;
            size_t vl = len - (size_t)(v - line);
            if (vl >= size) vl = size - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 0;
        }
        line += len + (end ? 2 : 0);
    }
    return -1;
}

void http_resp_free(struct http_resp *r) {
    free(r->headers);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static int call(const struct dsrd_proc *p, const char *method, const char *path, const char *body, size_t len,
                const char *key, const char *extra_header, double timeout_s, struct http_resp *out) {
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[512], auth[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", p->port, path);
    bool own_type = extra_header && strncasecmp(extra_header, "Content-Type:", 13) == 0;
    struct curl_slist *h = own_type ? NULL : curl_slist_append(NULL, "Content-Type: application/json");
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    if (extra_header) h = curl_slist_append(h, extra_header);
    struct sink s = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L); /* no body follows the headers */
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    out->body = s.p;
    if (out->body) out->json = json_loads(out->body, 0, NULL);
    return rc == CURLE_OK ? 0 : -1;
}

int http_call(const struct dsrd_proc *p, const char *method, const char *path, const char *body, size_t len,
              const char *key, const char *extra_header, struct http_resp *out) {
    return call(p, method, path, body, len, key, extra_header, 300, out);
}

int http_call_within(const struct dsrd_proc *p, const char *method, const char *path, const char *body, size_t len,
                     const char *key, double timeout_s, struct http_resp *out) {
    return call(p, method, path, body, len, key, NULL, timeout_s, out);
}

int http_post_json(const struct dsrd_proc *p, const char *path, json_t *doc, const char *key, struct http_resp *out) {
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!s) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    int rc = http_call(p, "POST", path, s, strlen(s), key, NULL, out);
    free(s);
    return rc;
}

json_t *json_ints(const int32_t *x, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(x[i]));
    return a;
}

double api_metric(const char *text, const char *name) {
    const char *p = text;
    size_t n = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') return atof(p + n + 1);
        p += n;
    }
    return -1;
}
