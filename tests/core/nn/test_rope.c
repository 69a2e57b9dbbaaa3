/* Rotary position embedding (core/nn/ops.h): op_rope_inplace against HF's
 * rotate_half definition evaluated in double; the table form the LM forward
 * uses (op_rope_table + op_rope_apply_inplace) bit-identical to it; the
 * backward rotation undoing the forward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "harness.h"
#include "nn/ops.h"

enum { TOKENS = 37, HEADS = 3, HEAD_DIM = 24 };

/* q·cos + rotate_half(q)·sin, rotate_half(q) = (−q[half:], q[:half]), with
 * inv_freq = theta^(−2i/d) as HF computes it in float32. */
static void rope_reference(float *out, const float *x, const int *pos, float theta) {
    int half = HEAD_DIM / 2;
    for (int t = 0; t < TOKENS; t++)
        for (int h = 0; h < HEADS; h++) {
            const float *v = x + ((size_t)t * HEADS + h) * HEAD_DIM;
            float *o = out + ((size_t)t * HEADS + h) * HEAD_DIM;
            for (int i = 0; i < half; i++) {
                float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)HEAD_DIM);
                double a = (double)pos[t] * inv_freq, c = cos(a), s = sin(a);
                o[i] = (float)(v[i] * c - v[i + half] * s);
                o[i + half] = (float)(v[i + half] * c + v[i] * s);
            }
        }
}

static void test_rope(struct th *t) {
    struct dsr_rng r;
    rng_seed(&r, 7);
    size_t n = (size_t)TOKENS * HEADS * HEAD_DIM;
    float *x = malloc(n * sizeof *x), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    float *want = malloc(n * sizeof *want), *cs = malloc((size_t)TOKENS * HEAD_DIM * sizeof *cs);
    int pos[TOKENS];
    if (!TH_CHECK(t, x && a && b && want && cs, "out of memory")) goto out;
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
    /* positions out of order and far apart, as packed segments give */
    for (int i = 0; i < TOKENS; i++) pos[i] = (i * 131) % 997;
    const float theta = 10000.0f;

    memcpy(a, x, n * sizeof *a);
    op_rope_inplace(a, pos, TOKENS, HEADS, HEAD_DIM, theta);
    rope_reference(want, x, pos, theta);
    TH_CLOSE(t, "op_rope_inplace vs rotate_half", a, want, n, 1e-6);

    memcpy(b, x, n * sizeof *b);
    op_rope_table(cs, pos, TOKENS, HEAD_DIM, theta);
    op_rope_apply_inplace(b, cs, TOKENS, HEADS, HEAD_DIM);
    TH_CHECK(t, memcmp(a, b, n * sizeof *a) == 0, "table form differs from op_rope_inplace");

    op_rope_backward_inplace(b, pos, TOKENS, HEADS, HEAD_DIM, theta);
    TH_CLOSE(t, "backward undoes forward", b, x, n, 1e-6);
out:
    free(x);
    free(a);
    free(b);
    free(want);
    free(cs);
}

int main(void) {
    struct th t = {0};
    th_run(&t, "rope", test_rope);
    return th_finish(&t, "test_rope");
}
