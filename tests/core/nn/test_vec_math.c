/* vec_gelu_erf and vec_silu (core/nn/vec_math.h) against their definitions
 * in double over [-12, 12] and at 0; lengths that leave a tail of every size;
 * an element's result does not depend on its position in the array (the
 * tail goes through the same vector path). */
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

static void test_gelu(struct th *t) { check(t, "gelu_erf", vec_gelu_erf, gelu_ref); }
static void test_silu(struct th *t) { check(t, "silu", vec_silu, silu_ref); }

int main(void) {
    struct th t = {0};
    th_run(&t, "gelu_erf", test_gelu);
    th_run(&t, "silu", test_silu);
    return th_finish(&t, "test_vec_math");
}
