/* vec_gelu_erf, vec_silu, vec_exp_shifted and vec_swiglu (core/nn/vec_math.h)
 * against their definitions in double over [-12, 12] and at 0; lengths that leave a tail of
 * every size; an element's result does not depend on its position in the
 * array (the tail goes through the same vector path).  vec_swiglu_backward
 * against the derivative in double and central differences of vec_swiglu;
 * vec_sum, vec_sum_sq and vec_sum_sq_dev against long double.  vec_softmax
 * bit for bit against its documented arithmetic written out here (4-lane
 * maximum, vec_exp_shifted, 4 double partial sums, the float reciprocal), for
 * every length 1..40 and 4099, and within 1e-6 of softmax in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nn/vec_math.h"

enum { N = 4099 }; /* 512 vectors and a 3-element tail */

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double silu_ref(double x) { return x / (1.0 + exp(-x)); }

static void check(struct th *t, const char *name, void (*f)(float *, size_t), double (*ref)(double)) {
    float *x = malloc(N * sizeof *x), *y = malloc((N + 1) * sizeof *y);
    if (!TH_CHECK(t, x && y, "out of memory")) goto out;
    for (int i = 0; i < N; i++) x[i] = -12.0f + 24.0f * (float)i / (N - 1);
    x[N / 2] = 0.0f;
    memcpy(y, x, N * sizeof *x);
    f(y, N);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double err = fabs((double)y[i] - ref(x[i])) / (1.0 + fabs((double)x[i]));
        worst = err > worst ? err : worst;
    }
    TH_CHECK(t, worst <= 1e-6, "%s: worst error %.3g (relative to 1 + |x|) > 1e-6", name, worst);
    /* every tail length, and each element moved one place: same bits */
    for (size_t n = 1; n <= 17; n++) {
        float a[17], b[18];
        memcpy(a, x + 100, n * sizeof *a);
        memcpy(b + 1, x + 100, n * sizeof *b);
        b[0] = x[7];
        f(a, n);
        f(b, n + 1);
        TH_CHECK(t, memcmp(a, b + 1, n * sizeof *a) == 0, "%s: %zu elements: result depends on position", name, n);
        TH_CHECK(t, memcmp(a, y + 100, n * sizeof *a) == 0, "%s: %zu-element tail differs from the full vectors",
                 name, n);
    }
out:
    free(x);
    free(y);
}

/* up alternates 0.75 and -1.5, so a gate paired with the wrong up shows. */
static float up_of(size_t i) { return i % 2 ? -1.5f : 0.75f; }
static double swiglu_ref_at(double x, size_t i) { return silu_ref(x) * up_of(i); }

static void test_swiglu(struct th *t) {
    enum { n = 1003 };
    float gate[n], up[n], out[n], alias[n], dgate[n], dup[n], d_act[n];
    double worst = 0.0, worst_d = 0.0, worst_fd = 0.0;
    for (size_t i = 0; i < n; i++) {
        gate[i] = -12.0f + 24.0f * (float)i / (n - 1);
        up[i] = up_of(i);
        d_act[i] = 0.5f - (float)(i % 7) / 7.0f;
    }
    vec_swiglu(out, gate, up, n);
    memcpy(alias, gate, sizeof alias);
    vec_swiglu(alias, alias, up, n);
    TH_CHECK(t, memcmp(out, alias, sizeof out) == 0, "swiglu in place (out = gate) differs");
    for (size_t i = 0; i < n; i++) {
        double err = fabs(out[i] - swiglu_ref_at(gate[i], i)) / (1.0 + fabs((double)gate[i]));
        worst = err > worst ? err : worst;
    }
    TH_CHECK(t, worst <= 1e-6, "swiglu: worst error %.3g > 1e-6", worst);
    for (size_t k = 1; k <= 17; k++) { /* every tail: same bits as the full pass */
        float part[17];
        vec_swiglu(part, gate + 500, up + 500, k);
        TH_CHECK(t, memcmp(part, out + 500, k * sizeof *part) == 0, "swiglu: %zu-element tail differs", k);
    }
    vec_swiglu_backward(gate, up, d_act, dgate, dup, n);
    for (size_t i = 0; i < n; i++) {
        double z = gate[i], s = 1.0 / (1.0 + exp(-z));
        double want_up = d_act[i] * z * s, want_gate = d_act[i] * up[i] * s * (1.0 + z * (1.0 - s));
        double e = fmax(fabs(dup[i] - want_up), fabs(dgate[i] - want_gate)) / (1.0 + fabs(z));
        worst_d = e > worst_d ? e : worst_d;
        /* central differences of the float forward, in the gate and in up */
        float h = 1e-2f, zp = gate[i] + h, zm = gate[i] - h, up_p = up[i] + h, up_m = up[i] - h, fp, fm, gp, gm;
        vec_swiglu(&fp, &zp, &up[i], 1);
        vec_swiglu(&fm, &zm, &up[i], 1);
        vec_swiglu(&gp, &gate[i], &up_p, 1);
        vec_swiglu(&gm, &gate[i], &up_m, 1);
        double fd_gate = d_act[i] * ((double)fp - fm) / (2.0 * h), fd_up = d_act[i] * ((double)gp - gm) / (2.0 * h);
        e = fmax(fabs(dgate[i] - fd_gate), fabs(dup[i] - fd_up)) / (1.0 + fabs(z));
        worst_fd = e > worst_fd ? e : worst_fd;
    }
    TH_CHECK(t, worst_d <= 1e-6, "swiglu backward: worst error %.3g against the derivative > 1e-6", worst_d);
    TH_CHECK(t, worst_fd <= 1e-3, "swiglu backward: worst error %.3g against central differences > 1e-3", worst_fd);
    memcpy(alias, d_act, sizeof alias);
    vec_swiglu_backward(gate, up, alias, alias, dup, n);
    TH_CHECK(t, memcmp(alias, dgate, sizeof alias) == 0, "swiglu backward in place (dgate = d_act) differs");
}

/* exp(x − 12) over [-12, 12]: softmax's range (every argument ≤ 0) */
static void exp_shifted_12(float *x, size_t n) { vec_exp_shifted(x, x, 12.0f, n); }
static double exp_shifted_12_ref(double x) { return exp(x - 12.0); }

/* The normalisations' sums against long double, for every tail length. */
static void test_sums(struct th *t) {
    float x[67];
    for (int i = 0; i < 67; i++) x[i] = (float)((i * 37) % 23) / 7.0f - 1.3f;
    for (size_t n = 0; n <= 67; n++) {
        long double s = 0, sq = 0, dev = 0, mean = 0.25L;
        for (size_t i = 0; i < n; i++) {
            s += x[i];
            sq += (long double)x[i] * x[i];
            dev += (x[i] - mean) * (x[i] - mean);
        }
        TH_CHECK(t, fabsl(vec_sum(x, n) - s) <= 1e-12L * (1 + fabsl(s)), "vec_sum of %zu: %.17g, want %.17Lg", n,
                 vec_sum(x, n), s);
        TH_CHECK(t, fabsl(vec_sum_sq(x, n) - sq) <= 1e-12L * (1 + sq), "vec_sum_sq of %zu: %.17g, want %.17Lg", n,
                 vec_sum_sq(x, n), sq);
        TH_CHECK(t, fabsl(vec_sum_sq_dev(x, n, 0.25) - dev) <= 1e-12L * (1 + dev),
                 "vec_sum_sq_dev of %zu: %.17g, want %.17Lg", n, vec_sum_sq_dev(x, n, 0.25), dev);
    }
}

static void test_gelu(struct th *t) { check(t, "gelu_erf", vec_gelu_erf, gelu_ref); }
static void test_exp(struct th *t) { check(t, "exp_shifted", exp_shifted_12, exp_shifted_12_ref); }
static void test_silu(struct th *t) { check(t, "silu", vec_silu, silu_ref); }

static void test_softmax(struct th *t) {
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *e = malloc(N * sizeof *e);
    if (!TH_CHECK(t, x && y && e, "out of memory")) goto out;
    for (int i = 0; i < N; i++) x[i] = (float)(8.0 * sin(0.37 * i) + 0.01 * i);
    for (int n = 1; n <= N; n = n == 40 ? N : n + 1) {
        memcpy(y, x, (size_t)n * sizeof *x);
        vec_softmax(y, (size_t)n);
        float mx = x[0];
        for (int j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
        vec_exp_shifted(e, x, mx, (size_t)n);
        double s[4] = {0, 0, 0, 0};
        int j = 0;
        for (; j + 4 <= n; j += 4)
            for (int l = 0; l < 4; l++) s[l] += e[j + l];
        for (; j < n; j++) s[0] += e[j];
        float inv = (float)(1.0 / ((s[0] + s[1]) + (s[2] + s[3])));
        double dsum = 0, worst = 0;
        for (j = 0; j < n; j++) dsum += exp((double)x[j] - mx);
        int same = 1;
        for (j = 0; j < n; j++) {
            same &= y[j] == e[j] * inv;
            double err = fabs(y[j] - exp((double)x[j] - mx) / dsum);
            worst = err > worst ? err : worst;
        }
        TH_CHECK(t, same, "length %d: not the documented arithmetic", n);
        TH_CHECK(t, worst < 1e-6, "length %d: %.3g from softmax in double", n, worst);
    }
out:
    free(x), free(y), free(e);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "gelu_erf", test_gelu);
    th_run(&t, "silu", test_silu);
    th_run(&t, "swiglu", test_swiglu);
    th_run(&t, "exp_shifted", test_exp);
    th_run(&t, "sums", test_sums);
    th_run(&t, "softmax", test_softmax);
    return th_finish(&t, "test_vec_math");
}
