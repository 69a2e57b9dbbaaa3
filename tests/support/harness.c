#include "harness.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void th_run(struct th *t, const char *name, th_fn fn) {
    t->current = name;
    t->current_failed = 0;
    fn(t);
    if (t->current_failed) {
        t->failed++;
        printf("FAIL %s\n", name);
    } else {
        t->passed++;
        printf("ok   %s\n", name);
    }
    t->current = NULL;
    fflush(stdout);
}

int th_finish(struct th *t, const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, t->passed, t->failed);
    return t->failed ? 1 : 0;
}

int th_check_at(struct th *t, const char *file, int line, int cond, const char *fmt, ...) {
    if (cond) return 1;
    /* a check outside any test function (set-up, tear-down) fails the suite by itself */
    if (t->current) t->current_failed++;
    else t->failed++;
    printf("  %s:%d: [%s] ", file, line, t->current ? t->current : "outside a test");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return 0;
}

int th_close_at(struct th *t, const char *file, int line, const char *what, const float *got,
                const float *want, size_t n, double rel_tol) {
    double maxmag = 0, maxerr = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) maxmag = fmax(maxmag, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= maxerr)) { /* also catches NaN */
            maxerr = isnan(e) ? INFINITY : e;
            worst = i;
        }
    }
    double rel = maxerr / fmax(maxmag, 1e-30);
    if (n == 0) return 1;
    if (getenv("TH_VERBOSE")) printf("  %s: max rel err %.3g over %zu values\n", what, rel, n);
    return th_check_at(t, file, line, rel <= rel_tol,
                       "%s: max rel err %.3g > %.1g (at %zu: got %.8g want %.8g, max|want| %.4g)", what, rel,
                       rel_tol, worst, (double)got[worst], (double)want[worst], maxmag);
}

int th_close_abs_at(struct th *t, const char *file, int line, const char *what, const float *got,
                    const float *want, size_t n, double abs_tol) {
    double maxerr = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= maxerr)) {
            maxerr = isnan(e) ? INFINITY : e;
            worst = i;
        }
    }
    if (n == 0) return 1;
    return th_check_at(t, file, line, maxerr <= abs_tol, "%s: max abs err %.3g > %.3g (at %zu: got %.8g want %.8g)",
                       what, maxerr, abs_tol, worst, (double)got[worst], (double)want[worst]);
}

const char *th_fixture_dir(void) {
    const char *d = getenv("DSR_FIXTURES");
    return d ? d : "tests/fixtures";
}

struct st_file *th_open_fixture(const char *relpath) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", th_fixture_dir(), relpath);
    struct st_file *f = NULL;
    struct dsr_err err;
    if (st_open(path, &f, &err) != 0) {
        fprintf(stderr, "cannot open fixture: %s\n", err.msg);
        exit(2);
    }
    return f;
}

static const struct st_tensor *must_find(struct st_file *f, const char *name) {
    const struct st_tensor *t = st_find(f, name);
    if (!t) {
        fprintf(stderr, "fixture %s has no tensor %s\n", f->path, name);
        exit(2);
    }
    return t;
}

float *th_tensor_f32(struct st_file *f, const char *name, size_t *n) {
    const struct st_tensor *t = must_find(f, name);
    float *out = malloc((t->numel + 1) * sizeof *out);
    struct dsr_err err;
    if (!out || st_to_f32(t, out, &err) != 0) {
        fprintf(stderr, "fixture %s: %s\n", name, out ? err.msg : "out of memory");
        exit(2);
    }
    if (n) *n = t->numel;
    return out;
}

int64_t *th_tensor_i64(struct st_file *f, const char *name, size_t *n) {
    const struct st_tensor *t = must_find(f, name);
    int64_t *out = malloc((t->numel + 1) * sizeof *out);
    struct dsr_err err;
    if (!out || st_to_i64(t, out, &err) != 0) {
        fprintf(stderr, "fixture %s: %s\n", name, out ? err.msg : "out of memory");
        exit(2);
    }
    if (n) *n = t->numel;
    return out;
}

int32_t *th_tensor_i32(struct st_file *f, const char *name, size_t *n) {
    size_t cnt = 0;
    int64_t *wide = th_tensor_i64(f, name, &cnt);
    int32_t *out = malloc((cnt + 1) * sizeof *out);
    if (!out) exit(2);
    for (size_t i = 0; i < cnt; i++) out[i] = (int32_t)wide[i];
    free(wide);
    if (n) *n = cnt;
    return out;
}

char *th_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}

int th_build_program(const char *name, char *out, size_t cap) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1) return -1;
    exe[n] = '\0';
    /* test binaries live in BUILD/tests/..., tools such as the soak in BUILD/tools/ */
    char *tests = NULL;
    for (char *p = strstr(exe, "/tests/"); p; p = strstr(p + 1, "/tests/")) tests = p;
    if (!tests)
        for (char *p = strstr(exe, "/tools/"); p; p = strstr(p + 1, "/tools/")) tests = p;
    if (!tests) return -1;
    *tests = '\0';
    int k = snprintf(out, cap, "%s/%s", exe, name);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}
